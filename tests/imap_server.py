"""A real IMAP server for tests: Debian's dovecot, started on a free loopback port with its own
configuration, users and mail in a temporary folder, and stopped after the test.

Plaintext login is allowed (loopback only, no TLS); one passwd-file user; mail is a Maildir
under the folder. Run as root (as CI is), dovecot's own login and internal users are used and
the mail belongs to ``nobody``; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class ImapUnavailable(RuntimeError):
    """dovecot is not installed or would not start here."""


@dataclass
class ImapServer:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "returns"
    password: str = "returns-password"
    process: subprocess.Popen[bytes] | None = None

    @property
    def maildir(self) -> Path:
        return self.folder / "home" / self.username / "Maildir"

    def start(self) -> ImapServer:
        if not Path(DOVECOT).exists():
            raise ImapUnavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        self.port = _free_port()
        config = self._write_config()
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise ImapUnavailable(f"dovecot exited: {error.strip()}")
            try:
                with imaplib.IMAP4(self.host, self.port, timeout=1) as client:
                    client.login(self.username, self.password)
                    client.logout()
                return self
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.1)
        self.stop()
        raise ImapUnavailable(f"dovecot did not answer on {self.host}:{self.port}: see "
                              f"{self.folder / 'dovecot.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.username, self.password)
        return client

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        """Put ``message`` in ``folder`` over IMAP APPEND, as delivery would."""
        with self.client() as client:
            client.create(folder)  # fails harmlessly when it exists
            status, detail = client.append(folder, None, None, message)
            assert status == "OK", detail

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        with self.client() as client:
            status, _ = client.select(folder, readonly=True)
            if status != "OK":
                return []
            _, found = client.uid("SEARCH", "ALL")
            result = []
            for uid in found[0].split():
                _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                result.append(parts[0][1])
            return result

    def env(self) -> dict[str, str]:
        return {"NEWSLETTER_RETURNS_IMAP_HOST": self.host,
                "NEWSLETTER_RETURNS_IMAP_PORT": str(self.port),
                "NEWSLETTER_RETURNS_IMAP_SECURITY": "none",
                "NEWSLETTER_RETURNS_IMAP_USERNAME": self.username,
                "NEWSLETTER_RETURNS_IMAP_PASSWORD": self.password}

    def _write_config(self) -> Path:
        root = os.getuid() == 0
        mail_user = pwd.getpwnam("nobody") if root else pwd.getpwuid(os.getuid())
        me = pwd.getpwuid(os.getuid()).pw_name
        for sub in ("run", "state", "home"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        home = self.folder / "home" / self.username
        home.mkdir(parents=True, exist_ok=True)
        if root:
            for path in (self.folder / "home", home):
                os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
        passwd = self.folder / "passwd"
        passwd.write_text(f"{self.username}:{{PLAIN}}{self.password}::::::\n")
        config = self.folder / "dovecot.conf"
        config.write_text(f"""
base_dir = {self.folder / 'run'}
state_dir = {self.folder / 'state'}
log_path = {self.folder / 'dovecot.log'}
protocols = imap
listen = {self.host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {'dovenull' if root else me}
default_internal_user = {'dovecot' if root else me}
first_valid_uid = {mail_user.pw_uid}
last_valid_uid = 0
mail_location = maildir:{home}/Maildir
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}
}}
""")
        return config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
