"""Worker processes for `python -m app`, each with a listening socket of its own.

uvicorn's own `--workers` share one socket: whichever worker wakes first takes a burst of new
connections, and since connections live long (keep-alive, results streams) the split stays
uneven; bench/ingest.py saw 49 of 64 connections on one of two workers. With SO_REUSEPORT each
worker has its own accept queue and the kernel hashes every new connection to one of them.
A worker that dies is started again; one that fails at startup stops the whole service.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

APP = "app:create_app"
LISTEN_BACKLOG = 2048
STARTUP_GRACE_S = 10.0
SUPERVISE_EVERY_S = 0.5
STOP_TIMEOUT_S = 15.0

log = logging.getLogger(__name__)


def serve(host: str, port: int, workers: int, **uvicorn_options: Any) -> None:
    """Serves the app until SIGINT or SIGTERM, in this process or in `workers` child processes."""
    if workers == 1:
        uvicorn.run(APP, factory=True, host=host, port=port, **uvicorn_options)
        return
    Supervisor(host, port, workers, uvicorn_options).run()


def reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    return sock


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, uvicorn_options: dict[str, Any]) -> None:
        self.host, self.port, self.workers = host, port, workers
        self.uvicorn_options = uvicorn_options
        # spawn, not fork: uvloop and open database handles do not survive a fork.
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()

    def run(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        # All sockets listen before any worker starts, so that no early connection lands on the
        # first worker up. The supervisor keeps them open: connections that arrive while a
        # worker is being replaced wait in its queue for the new one.
        sockets = [reuseport_socket(self.host, self.port) for _ in range(self.workers)]
        children = [self._start(sock) for sock in sockets]
        failed = False
        while not self.stopping.wait(SUPERVISE_EVERY_S):
            for index, (process, started) in enumerate(children):
                if process.is_alive():
                    continue
                # An error exit soon after starting is a failure to start (bad settings, a database
                # that cannot be migrated): starting again would only loop. A worker killed by a
                # signal, or one that ran for a while, is replaced.
                exitcode = process.exitcode or 0
                if exitcode > 0 and time.monotonic() - started < STARTUP_GRACE_S:
                    log.error("worker %d exited with %s while starting; stopping", process.pid, process.exitcode)
                    failed = True
                    self.stopping.set()
                    break
                log.warning("worker %d exited with %s; starting another", process.pid, process.exitcode)
                children[index] = self._start(sockets[index])
        self._stop([process for process, _ in children])
        if failed:
            sys.exit(1)

    def _start(self, sock: socket.socket) -> tuple[multiprocessing.process.BaseProcess, float]:
        process = self.context.Process(target=run_worker, args=(sock, self.uvicorn_options, os.getpid()), daemon=False)
        process.start()
        return process, time.monotonic()

    def _stop(self, processes: list[multiprocessing.process.BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests, the vote service its commits
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def run_worker(sock: socket.socket, uvicorn_options: dict[str, Any], supervisor_pid: int) -> None:
    """A child process: serves on its own SO_REUSEPORT socket until told to stop or orphaned."""
    _stop_when_orphaned(supervisor_pid)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])


def _stop_when_orphaned(supervisor_pid: int) -> None:
    # A supervisor killed with SIGKILL cannot stop its workers; they notice and stop themselves,
    # so that no orphan keeps serving on the port beside a restarted service.
    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(SUPERVISE_EVERY_S)  # no event crosses processes: polling is the way to see it
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
