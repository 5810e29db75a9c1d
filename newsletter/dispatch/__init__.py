"""Dispatch: takes the active subscribers and the time; gives every due digest sent once.
``schedule`` plans editions (and drives ``newsletter run``), ``claims`` is the work queue,
``worker`` and ``deliver`` compose and send, ``journal`` and ``ledger`` record who got what."""
