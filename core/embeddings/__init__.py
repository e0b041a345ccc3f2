"""Embeddings off the reply path: requests go to SQS priority queues; a worker computes and stores vectors."""
