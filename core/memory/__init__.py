"""What an agent remembers beyond messages: facts, relationships, reflection and retention.

* ``core.memory.facts``: storing facts with de-duplication (the ``Fact`` record is ``core.types.fact``).
* ``core.memory.reflection``: the REFLECTION evaluator (facts and relationships from a conversation).
* ``core.memory.providers``: FACTS, RELATIONSHIPS and ENTITIES.
* ``core.memory.retention``: scheduled message compression, fact consolidation and orphan clean-up.
* ``core.memory.plugin``: ``memory_plugin``, all of the above as one plugin.
"""
