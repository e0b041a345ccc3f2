-- Knowledge documents and their fragments (core/knowledge, core/db/postgres/knowledge.py).
--
-- A document is a memory of type 'documents' (elizaOS plugin-knowledge's table name) holding
-- the whole text; its fragments are memories of type 'knowledge' whose metadata.documentId
-- names the document and metadata.position orders them. Replacing or deleting a document
-- deletes its fragments by that key, so it is indexed, for fragments only. Searches need no
-- new index: embeddings_agent_type and the HNSW index already serve "this owner's fragments".
CREATE INDEX memories_knowledge_document
    ON memories (agent_id, (metadata->>'documentId'))
    WHERE type = 'knowledge';
