"""Compose: takes a ``Digest`` and the reader's signed links; gives the bytes of one email.
``render`` fills the templates (CSS inlined once per run by ``inline``), ``message`` builds the
MIME message and its headers, ``tokens`` signs and checks every link."""
