"""Delivery: takes finished messages; gives each one's fate (accepted, or the server's reply
and what it means). ``transport`` sends over a pool of SMTP connections or to the ``outbox``;
``faults`` says whether a failure is worth a retry; ``throttle`` paces a relay."""
