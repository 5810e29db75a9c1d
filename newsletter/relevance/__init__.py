"""Relevance: takes a subscriber's topics and the candidate papers; gives a ``Digest`` of
sections, each paper with the reason it was chosen. ``text`` reads words, ``query`` understands
a topic as typed (facets, qualifiers), ``index`` holds the catalog's words once per run,
``score`` grades a paper against one facet, ``expand`` learns words and spellings from the
catalog, ``topic`` scores a topic's papers, ``calibrate`` turns them into probabilities of
relevance and admits them, ``rank`` memoizes topics and serves
``send``, ``recommend`` and the web preview (``semantic`` joins when installed), ``shared``
lets the worker processes of a run rank each topic once (through the store), ``vectors``
holds papers as vectors for ``feedback``'s model of a reader's taste, ``select`` builds the
digest."""
