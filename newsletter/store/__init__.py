"""The database. Takes papers, subscribers and deliveries; gives them back. ``schema`` holds
the tables, ``engine`` opens a database (and checks its schema); ``migrate`` and
``migrations/`` keep the schema's revision;
one module per area of queries (``catalog``, ``subscribers``, ``embeddings``, ``rankings``);
the delivery
queue's queries live with their stage in ``dispatch/``."""
