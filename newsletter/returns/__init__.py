"""What comes back after a digest went out: the inbound stage.

Takes the messages in a mailbox of returns (an IMAP folder or a Maildir, ``mailboxes.py``):
delivery status notifications (RFC 3464 bounces, sent to the VERP envelope sender), feedback
reports (RFC 5965 ARF spam complaints from mailbox providers' feedback loops), and mail to the
``mailto:`` address of List-Unsubscribe. Gives, for each one (``reports.py`` reads it, pure),
who it is about and what it means, and applies that (``process.py``): a hard bounce suppresses
the address at once, soft bounces on enough editions do, a complaint or a mailto request
unsubscribes at once. Each message is recorded (``store/returns.py``) before it is moved to the
done folder, so a rerun never counts one twice; one that cannot be read is left where it is
and reported for a person.

A message counts only when it names a subscriber in a way nobody can forge: the signed VERP
token of the envelope sender, the random Message-ID of a digest we sent, or the signed token
of an unsubscribe link. An address merely written in a report suppresses nobody.
"""
