"""Relevance: takes a subscriber's topics and the candidate papers; gives a ``Digest`` of
sections, each paper with the reason it was chosen. ``text`` and ``proximity`` read words,
``rank`` scores (``semantic`` joins when installed), ``select`` builds the digest."""
