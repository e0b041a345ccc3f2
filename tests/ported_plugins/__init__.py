"""Two elizaOS 1.x plugins ported to this runtime, with their behaviour tests (README.md here)."""
