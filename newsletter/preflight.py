"""Is this configuration fit to mail real people? Checked by ``newsletter check``, and by
``send``, ``run`` and ``worker`` before their first SMTP message (the outbox needs none of it).

Takes the Settings; gives Findings, each naming the setting to change. A *refusal* is what
would make every digest wrong for its readers: footer links to ``http://localhost``, a
List-Unsubscribe that RFC 8058 forbids (one-click needs https), a From or List-Id under
``example.org``, links signed with a key that only this database holds, templates that cannot
render, a DKIM key that cannot sign. A *warning* is worth a look but may be intended (a relay
without TLS on a trusted network, no DKIM signature from here when the relay signs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from newsletter.errors import ConfigError
from newsletter.settings import Settings

Level = Literal["refuse", "warn"]
# RFC 2606 and 6761: names that can never reach a reader
SECRET_KEY_MIN = 16  # characters of the key that signs every link
_NEW_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
_RESERVED_TLDS = {"example", "invalid", "localhost", "local"}


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


def preflight(settings: Settings) -> list[Finding]:
    """Every finding for ``settings``, refusals first."""
    findings = [*_links(settings), *_addresses(settings), *_secret(settings),
                *_templates(settings), *_signing(settings), *_transport(settings)]
    return sorted(findings, key=lambda f: f.level != "refuse")


def refusals(settings: Settings) -> list[Finding]:
    return [f for f in preflight(settings) if f.level == "refuse"]


def require_ready(settings: Settings) -> list[Finding]:
    """ConfigError listing every refusal; else the warnings, for the caller to print."""
    findings = preflight(settings)
    refused = [f for f in findings if f.level == "refuse"]
    if refused:
        lines = "\n".join(f"  {f}" for f in refused)
        raise ConfigError(f"not sending over SMTP with these settings (`newsletter check` "
                          f"lists them all):\n{lines}")
    return findings


def unreachable_host(host: str) -> bool:
    """A name or address no reader can reach: this machine, a private network, a reserved
    name."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return reserved_domain(host)
    return ip.is_loopback or ip.is_private or ip.is_unspecified or ip.is_link_local


def reserved_domain(domain: str) -> bool:
    """``example.org``, ``mail.example.com``, ``x.example``, ``localhost``, ``a.invalid``..."""
    labels = domain.lower().rstrip(".").split(".")
    return "example" in labels or labels[-1] in _RESERVED_TLDS


def _links(settings: Settings) -> list[Finding]:
    url = settings.base_url
    parts = urlsplit(url)
    if parts.scheme != "https":
        return [Finding("refuse", "NEWSLETTER_BASE_URL",
                        f"{url!r} is not https: every email links there to unsubscribe, and "
                        "RFC 8058 one-click unsubscribe requires https; set the public https "
                        "address of `newsletter serve`")]
    if not parts.hostname or unreachable_host(parts.hostname):
        return [Finding("refuse", "NEWSLETTER_BASE_URL",
                        f"{url!r} cannot be reached by readers: the unsubscribe and preferences "
                        "links would be dead; set the public address of `newsletter serve`")]
    return []


def _addresses(settings: Settings) -> list[Finding]:
    found = []
    for setting, value in (("NEWSLETTER_FROM_ADDRESS", settings.from_address),
                           ("NEWSLETTER_UNSUBSCRIBE_MAILTO", settings.unsubscribe_mailto),
                           ("NEWSLETTER_REPLY_TO", settings.reply_to),
                           ("NEWSLETTER_BOUNCE_ADDRESS", settings.bounce_address)):
        domain = (value or "").rpartition("@")[2]
        if value and reserved_domain(domain):
            found.append(Finding("refuse", setting,
                                 f"{value!r} is at {domain}, which is reserved and reaches "
                                 "nobody: use an address at your own domain"))
    if settings.list_id and reserved_domain(settings.list_id.strip("<> ")):
        found.append(Finding("refuse", "NEWSLETTER_LIST_ID",
                             f"{settings.list_id!r} is under a reserved domain: use one you own, "
                             "e.g. papers.<your domain>"))
    return found


def _secret(settings: Settings) -> list[Finding]:
    if settings.secret_key is None:
        return [Finding("refuse", "NEWSLETTER_SECRET_KEY",
                        "not set: the unsubscribe links would be signed with a key kept only in "
                        f"this database, and a new database would break every link already "
                        f"sent; set a long random one: {_NEW_KEY}")]
    weak = weak_secret(settings)
    return [Finding("refuse", "NEWSLETTER_SECRET_KEY", weak)] if weak else []


def weak_secret(settings: Settings) -> str | None:
    """Why the configured key is too weak to sign links anyone can be sent, or None. (Unset,
    the database makes a strong one.)"""
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    if key is None or len(key) >= SECRET_KEY_MIN:
        return None
    return (f"{len(key)} characters: whoever guesses it can unsubscribe anybody and change "
            f"their preferences; use at least {SECRET_KEY_MIN}, e.g. {_NEW_KEY}")


def _templates(settings: Settings) -> list[Finding]:
    from newsletter.compose.render import Renderer  # loads jinja2 and premailer

    try:
        Renderer(settings.templates_dir, base_url=settings.base_url,
                 site_name=settings.from_name)
    except (ConfigError, OSError, ValueError) as exc:
        return [Finding("refuse", "NEWSLETTER_TEMPLATES_DIR", f"the templates cannot render "
                                                              f"a digest: {exc}")]
    except Exception as exc:  # a Jinja syntax error, say: any template failure is a refusal
        return [Finding("refuse", "NEWSLETTER_TEMPLATES_DIR",
                        f"the templates cannot render a digest: {exc.__class__.__name__}: {exc}")]
    return []


_NAMED = ("NEWSLETTER_REPLY_TO", "NEWSLETTER_BOUNCE_ADDRESS", "NEWSLETTER_FEEDBACK_ID")


def _signing(settings: Settings) -> list[Finding]:
    """What a run's headers and signer (``returns_of``) refuse; DKIM missing or misaligned."""
    from newsletter.dispatch.deliver import returns_of

    try:
        returns_of(settings, "preflight", datetime.now(UTC))
    except ConfigError as exc:
        named = next((n for n in _NAMED if str(exc).startswith(n)), "NEWSLETTER_DKIM_KEY_FILE")
        return [Finding("refuse", named, str(exc).removeprefix(f"{named}: "))]
    if not settings.dkim_key_file:
        return [Finding("warn", "NEWSLETTER_DKIM_KEY_FILE",
                        "not set: digests leave unsigned; Gmail and Yahoo require DKIM from "
                        "bulk senders, so make sure the relay signs for "
                        f"{settings.domain} (README: DNS)")]
    signing, sender = settings.dkim_signing_domain.lower(), settings.domain.lower()
    if sender != signing and not sender.endswith("." + signing):
        return [Finding("warn", "NEWSLETTER_DKIM_DOMAIN",
                        f"digests are signed for {signing} but sent From {sender}: DMARC "
                        "needs the two aligned (the same domain, or From under it)")]
    return []


def _transport(settings: Settings) -> list[Finding]:
    found = []
    host = settings.smtp_host
    if host and settings.smtp_security == "none" and not _loopback(host):
        found.append(Finding("warn", "NEWSLETTER_SMTP_SECURITY",
                             f"'none': mail (and any password) crosses the network to {host} "
                             "unencrypted; use starttls or tls unless the relay is on a "
                             "trusted network"))
    if host and not settings.smtp_validate_certs:
        found.append(Finding("warn", "NEWSLETTER_SMTP_VALIDATE_CERTS",
                             "false: anyone between here and the relay can pose as it"))
    if not settings.returns_imap_host and not settings.returns_maildir:
        found.append(Finding("warn", "NEWSLETTER_RETURNS_IMAP_HOST",
                             "no mailbox of returns: bounces, complaints and mailto "
                             "unsubscribes are left for a person (or set "
                             "NEWSLETTER_RETURNS_MAILDIR)"))
    return found


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
