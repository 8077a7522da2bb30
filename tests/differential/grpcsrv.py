"""The gRPC origin: a grpcio server with raw-bytes methods that records the
metadata of every call it receives.

Methods (service `test.Svc`): `Echo` returns the request; `Slow` sleeps
past the 1 s route timeout first; `Fail` ends with ABORTED "nope".
Unknown methods get grpcio's UNIMPLEMENTED.
"""

import threading
import time
from concurrent import futures

import grpc

from origin import Recorded, SLOW_SECONDS


class GrpcOrigin:
    """A recording grpcio server on a free loopback port."""

    def __init__(self):
        self.records = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  options=[("grpc.so_reuseport", 0)])
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self._echo),
            "Slow": grpc.unary_unary_rpc_method_handler(self._slow),
            "Fail": grpc.unary_unary_rpc_method_handler(self._fail),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Svc", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _record(self, context, request, method):
        md = [(k, v if isinstance(v, str) else repr(v)) for k, v in context.invocation_metadata()]
        with self.lock:
            self.records.append(Recorded("POST", f"/test.Svc/{method}", "HTTP/2", md, request))

    def _echo(self, request, context):
        self._record(context, request, "Echo")
        return request

    def _slow(self, request, context):
        self._record(context, request, "Slow")
        time.sleep(SLOW_SECONDS)
        return request

    def _fail(self, request, context):
        self._record(context, request, "Fail")
        context.abort(grpc.StatusCode.ABORTED, "nope")

    def mark(self):
        with self.lock:
            return len(self.records)

    def since(self, mark):
        with self.lock:
            return list(self.records[mark:])

    def stop(self):
        self.server.stop(grace=None)
