"""A real SMTP server (aiosmtpd) for the black-box tests.

Every accepted message is written to OUT/<n>.eml; every attempt (accepted or
refused) is counted in OUT/attempts.log, one line per DATA. Refusals are
scripted: the first --fail-first attempts get a 451 (try again later), and any
message to a recipient containing --bounce gets a 550 (permanent).
"""

import argparse
import asyncio
import pathlib

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out: pathlib.Path, fail_first: int, bounce: str):
        self.out = out
        self.fail_first = fail_first
        self.bounce = bounce
        self.attempts = 0
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        with open(self.out / "attempts.log", "a") as log:
            log.write(",".join(envelope.rcpt_tos) + "\n")
        if self.bounce and any(self.bounce in r for r in envelope.rcpt_tos):
            return "550 5.1.1 mailbox unavailable"
        if self.attempts <= self.fail_first:
            return "451 4.3.0 try again later"
        self.accepted += 1
        # Write aside, then rename: a reader never sees half a message.
        tmp = self.out / f".{self.accepted:06}.tmp"
        tmp.write_bytes(envelope.original_content)
        tmp.rename(self.out / f"{self.accepted:06}.eml")
        return "250 OK"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--bounce", default="")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    controller = Controller(Handler(out, args.fail_first, args.bounce), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"ready {args.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
