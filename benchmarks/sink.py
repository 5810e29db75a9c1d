"""A lean loopback SMTP sink for benchmarks: accepts every message, keeps none, counts them.

aiosmtpd tops out at ~480 messages/s on one core (2 ms per message), so a benchmark of the
sender that uses it measures aiosmtpd. This server is an ``asyncio.Protocol`` that parses the
command lines itself and only searches the DATA stream for the ``CRLF.CRLF`` terminator, so it
costs a few tens of microseconds per message and leaves the other core to the sender.

What it speaks (RFC 5321, enough for smtplib and aiosmtplib): EHLO (SIZE, 8BITMIME, SMTPUTF8;
no PIPELINING advertised, though commands that arrive together are still answered in order),
HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT, with 503 for commands out of sequence and 500
for unknown ones. The message ends at ``CRLF.CRLF`` (or ``.CRLF`` right after the 354);
``bytes`` counts the message as received on the wire (dot-stuffed, without the terminator).

Run it on its own::

    python benchmarks/sink.py --port 2525          # serves until stdin closes or Ctrl-C
    python benchmarks/sink.py --selftest           # checks it with aiosmtplib and smtplib

Control over stdin (one command a line; each answer is one JSON line on stdout):
``stats`` -> {"messages", "bytes", "connections", "cpu_s", "maxrss_kb"}, ``reset`` zeroes the
counters, end of input stops the server. The first line on stdout is {"port": N} once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time

CRLF = b"\r\n"
TERMINATOR = b"\r\n.\r\n"
MAX_LINE = 4096  # a command line longer than this is an error (RFC 5321 allows 512)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.connections = 0
        self.recipients = 0

    def as_dict(self) -> dict[str, float | int]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"messages": self.messages, "bytes": self.bytes, "connections": self.connections,
                "recipients": self.recipients, "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss, "time": time.time()}


class SinkProtocol(asyncio.Protocol):
    """One SMTP session. States: command lines, or the body of a DATA."""

    def __init__(self, stats: Stats, hostname: str = "sink.local") -> None:
        self.stats = stats
        self.hostname = hostname
        self.buffer = bytearray()
        self.in_data = False
        self.data_start = 0  # where the current message body begins in the buffer
        self.scan_from = 0  # where to resume looking for the terminator
        self.greeted = False
        self.sender: bytes | None = None
        self.rcpts = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.connections += 1
        self._reply(b"220 " + self.hostname.encode() + b" ESMTP benchmark sink")

    def _reply(self, line: bytes) -> None:
        assert self.transport is not None
        self.transport.write(line + CRLF)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            if self.in_data:
                if not self._take_body():
                    return
                continue
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE:
                    self._reply(b"500 5.5.6 line too long")
                    self.buffer.clear()
                return
            line = bytes(self.buffer[:end]).rstrip(b"\r")
            del self.buffer[:end + 1]
            self._command(line)

    def _take_body(self) -> bool:
        """True when the message ended (and was removed from the buffer)."""
        buf = self.buffer
        if buf[:3] == b".\r\n":  # an empty message: the terminator right after the 354
            body_len, cut = 0, 3
        else:
            at = buf.find(TERMINATOR, max(self.scan_from - 4, 0))
            if at < 0:
                self.scan_from = len(buf)
                return False
            body_len, cut = at + 2, at + 5  # the body keeps its last CRLF
        del buf[:cut]
        self.scan_from = 0
        self.in_data = False
        self.stats.messages += 1
        self.stats.bytes += body_len
        self.stats.recipients += self.rcpts
        self.sender, self.rcpts = None, 0
        self._reply(b"250 2.0.0 queued as %d" % self.stats.messages)
        return True

    def _command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.greeted = True
            self.sender, self.rcpts = None, 0
            self.transport.write(  # type: ignore[union-attr]
                b"250-" + self.hostname.encode() + b"\r\n250-SIZE 104857600\r\n"
                b"250-8BITMIME\r\n250-SMTPUTF8\r\n250 HELP\r\n")
        elif verb == b"HELO":
            self.greeted = True
            self.sender, self.rcpts = None, 0
            self._reply(b"250 " + self.hostname.encode())
        elif verb == b"MAIL":
            if not self.greeted:
                self._reply(b"503 5.5.1 send EHLO or HELO first")
            elif self.sender is not None:
                self._reply(b"503 5.5.1 nested MAIL command")
            elif not line[4:].lstrip().upper().startswith(b"FROM:"):
                self._reply(b"501 5.5.4 syntax: MAIL FROM:<address>")
            else:
                self.sender = line
                self._reply(b"250 2.1.0 OK")
        elif verb == b"RCPT":
            if self.sender is None:
                self._reply(b"503 5.5.1 need MAIL before RCPT")
            elif not line[4:].lstrip().upper().startswith(b"TO:"):
                self._reply(b"501 5.5.4 syntax: RCPT TO:<address>")
            else:
                self.rcpts += 1
                self._reply(b"250 2.1.5 OK")
        elif verb == b"DATA":
            if not self.rcpts:
                self._reply(b"503 5.5.1 need RCPT before DATA")
            else:
                self.in_data = True
                self.scan_from = 0
                self._reply(b"354 end data with <CR><LF>.<CR><LF>")
        elif verb == b"RSET":
            self.sender, self.rcpts = None, 0
            self._reply(b"250 2.0.0 OK")
        elif verb == b"NOOP":
            self._reply(b"250 2.0.0 OK")
        elif verb == b"VRFY":
            self._reply(b"252 2.0.0 cannot verify, but will accept")
        elif verb == b"QUIT":
            self._reply(b"221 2.0.0 bye")
            self.transport.close()  # type: ignore[union-attr]
        else:
            self._reply(b"500 5.5.2 command not recognized")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, control: bool) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(stats), host, port, backlog=1024,
                                      reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound}), flush=True)
    if not control:
        async with server:
            await server.serve_forever()
        return
    done = loop.create_future()

    def on_stdin() -> None:
        line = sys.stdin.readline()
        if not line:
            if not done.done():
                done.set_result(None)
            return
        cmd = line.strip()
        if cmd == "stats":
            print(json.dumps(stats.as_dict()), flush=True)
        elif cmd == "reset":
            stats.reset()
            print(json.dumps({"reset": True}), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await done
    loop.remove_reader(sys.stdin.fileno())
    server.close()
    await server.wait_closed()


# -- self-test ---------------------------------------------------------------------------------

async def _selftest() -> None:
    """Start the sink here and talk to it with aiosmtplib and smtplib; raise on any mismatch."""
    import smtplib
    from email.message import EmailMessage

    import aiosmtplib

    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(stats), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    # aiosmtplib: reused connection, dot-stuffing, a body that ends without CRLF, RSET
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    await client.ehlo()
    assert client.supports_extension("size") and not client.supports_extension("pipelining")
    bodies = [b"Subject: a\r\n\r\nhello\r\n", b"Subject: b\r\n\r\n.leading dot\r\n..two\r\n.\r\nx",
              b"Subject: c\r\n\r\n" + b"y" * 100_000 + b"\r\n"]
    for body in bodies:
        before = stats.bytes
        errors, reply = await client.sendmail("a@example.org", ["b@example.org"], body)
        assert not errors and reply.startswith("2.0.0 queued"), reply
        # as on the wire: CRLF-terminated and dot-stuffed, without the final ".CRLF"
        wire = body if body.endswith(CRLF) else body + CRLF
        wire = wire.replace(b"\r\n.", b"\r\n..")
        assert stats.bytes - before == len(wire), (stats.bytes - before, len(wire))
    reply = await client.rset()
    assert reply.code == 250
    reply = await client.execute_command(b"DATA")
    assert reply.code == 503, reply  # DATA without RCPT
    await client.mail("a@example.org")
    await client.rcpt("b@example.org")
    await client.rcpt("c@example.org")
    reply = await client.data(b"Subject: two recipients\r\n\r\nhi\r\n")
    assert reply.code == 250
    await client.quit()
    assert stats.messages == 4 and stats.recipients == 5, stats.as_dict()

    # smtplib, a connection per message, in a thread (it blocks)
    def blocking() -> None:
        for i in range(3):
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                msg = EmailMessage()
                msg["Subject"], msg["From"], msg["To"] = f"m{i}", "a@example.org", "b@example.org"
                msg.set_content("line\n.dot line\n")
                smtp.send_message(msg)

    await asyncio.to_thread(blocking)
    assert stats.messages == 7 and stats.connections == 4, stats.as_dict()

    # raw bytes split at awkward places: the terminator across two packets, an empty message
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def expect(prefix: bytes) -> None:
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
        assert line.startswith(prefix), line

    await expect(b"220")
    for cmd, code in [(b"EHLO x", b"250"), (b"MAIL FROM:<a@b>", b"250"),
                      (b"RCPT TO:<c@d>", b"250"), (b"DATA", b"354")]:
        writer.write(cmd + CRLF)
        await expect(code)
    writer.write(b"body line\r\n.")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"\r\nMAIL FROM:<a@b>\r\n")  # a following command in the same packet
    await expect(b"250 2.0.0 queued")
    await expect(b"250 2.1.0")
    writer.write(b"RCPT TO:<c@d>\r\nDATA\r\n")
    await expect(b"250")
    await expect(b"354")
    writer.write(b".\r\nNOPE\r\nQUIT\r\n")
    await expect(b"250 2.0.0 queued")
    await expect(b"500")
    await expect(b"221")
    writer.close()
    assert stats.messages == 9, stats.as_dict()
    server.close()
    await server.wait_closed()
    print(f"sink self-test passed: {stats.messages} messages, {stats.bytes} bytes, "
          f"{stats.connections} connections")


async def _capacity(messages: int, connections: int, size: int) -> None:
    """How fast the sink takes messages: a sink subprocess, a minimal raw client here."""
    import subprocess

    proc = subprocess.Popen([sys.executable, __file__, "--control"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    port = json.loads(proc.stdout.readline())["port"]
    line = b"x" * 74 + CRLF
    body = b"Subject: capacity\r\n\r\n" + line * max(size // len(line), 1)

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def reply() -> bytes:
            got = await reader.readline()
            while got[3:4] == b"-":
                got = await reader.readline()
            return got

        await reply()
        writer.write(b"EHLO client\r\n")
        await reply()
        for _ in range(count):
            for cmd in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.org>\r\n",
                        b"DATA\r\n"):
                writer.write(cmd)
                await reply()
            writer.write(body + b".\r\n")
            await reply()
        writer.write(b"QUIT\r\n")
        await reply()
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(messages // connections) for _ in range(connections)))
    wall = time.perf_counter() - start
    proc.stdin.write("stats\n")
    proc.stdin.flush()
    stats = json.loads(proc.stdout.readline())
    proc.stdin.close()
    proc.wait()
    print(f"sink capacity: {stats['messages']} messages of {len(body)} bytes over {connections} "
          f"connections in {wall:.2f}s = {stats['messages'] / wall:,.0f} msg/s; sink CPU "
          f"{stats['cpu_s']:.2f}s ({1e6 * stats['cpu_s'] / stats['messages']:.0f} us/message "
          f"incl. start-up), sink peak RSS {stats['maxrss_kb'] / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--control", action="store_true",
                        help="answer stats/reset on stdin; stop at end of input")
    parser.add_argument("--selftest", action="store_true")
    parser.add_argument("--capacity", type=int, metavar="N",
                        help="push N messages into a sink subprocess with a raw client")
    parser.add_argument("--connections", type=int, default=4, help="for --capacity")
    parser.add_argument("--size", type=int, default=30_000, help="for --capacity: body bytes")
    args = parser.parse_args()
    if args.selftest:
        asyncio.run(_selftest())
        return
    if args.capacity:
        asyncio.run(_capacity(args.capacity, args.connections, args.size))
        return
    try:
        asyncio.run(serve(args.host, args.port, args.control))
    except KeyboardInterrupt:
        pass
    finally:
        if not args.control:
            print(json.dumps({"pid": os.getpid()}), file=sys.stderr)


if __name__ == "__main__":
    main()
