"""A subscriber in another language: Python stubs generated from the
service's own proto files with grpcio-tools, reading `Events.Subscribe`,
or the public subjects on NATS (nats-py) from the start of their stream.

    subscriber.py --proto-dir DIR --addr HOST:PORT --key KEY --count N
                  [--after-position P --after-part Q] [--type T ...]
    subscriber.py --proto-dir DIR --nats URL --subject SUBJECT --count N

Prints each event as one line of JSON (protobuf's JSON mapping) and exits
after N events, or with status 2 if none came for 20 seconds.
"""

import argparse
import asyncio
import importlib
import json
import os
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc


def stubs(proto_dir, out_dir):
    """Generates the Python modules of access/v1 into out_dir and imports them."""
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = [
        os.path.join("access", "v1", name)
        for name in sorted(os.listdir(os.path.join(proto_dir, "access", "v1")))
        if name.endswith(".proto")
    ]
    status = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out_dir}",
         f"--grpc_python_out={out_dir}", *files]
    )
    if status != 0:
        sys.exit(f"protoc failed on {files}")
    for package in ("access", os.path.join("access", "v1")):
        open(os.path.join(out_dir, package, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)
    return (
        importlib.import_module("access.v1.access_pb2"),
        importlib.import_module("access.v1.access_pb2_grpc"),
        importlib.import_module("access.v1.events_pb2"),
    )


async def from_nats(events_pb, url, subject, count):
    """Reads `count` public events from the start of the stream holding
    `subject`, in order, decoding each protobuf payload."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy="all")
        for _ in range(count):
            try:
                msg = await sub.next_msg(timeout=20)
            except nats.errors.TimeoutError:
                sys.exit(2)
            event = events_pb.Event.FromString(msg.data)
            line = json_format.MessageToDict(event)
            line["subject"] = msg.subject
            print(json.dumps(line), flush=True)
    finally:
        await nc.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--addr")
    parser.add_argument("--key")
    parser.add_argument("--nats")
    parser.add_argument("--subject")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--after-position", type=int, default=0)
    parser.add_argument("--after-part", type=int, default=0)
    parser.add_argument("--type", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        pb, pb_grpc, events_pb = stubs(args.proto_dir, out_dir)
        if args.nats:
            asyncio.run(from_nats(events_pb, args.nats, args.subject, args.count))
            return
        channel = grpc.insecure_channel(args.addr)
        events = pb_grpc.EventsStub(channel).Subscribe(
            pb.SubscribeRequest(
                after_position=args.after_position,
                after_part=args.after_part,
                types=args.type,
            ),
            metadata=[("authorization", f"Bearer {args.key}")],
            timeout=20,
        )
        seen = 0
        try:
            for event in events:
                print(json_format.MessageToJson(event, indent=None), flush=True)
                seen += 1
                if seen == args.count:
                    events.cancel()
                    return
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and seen == args.count:
                return
            sys.exit(2 if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED else f"{e.code()}: {e.details()}")


if __name__ == "__main__":
    main()
