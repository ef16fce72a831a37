"""One scenario's world in one engine: a service of its own, a fault proxy in front of it, and
the browsers (devices) the scenario launched, each on a persistent profile of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fault_proxy import FaultProxy
from loss.browser_js import DISPATCH_ONLINE, SETTLED_VOTES
from loss.lab import SETTLE_TIMEOUT_MS, Lab, Tally

from tests.service_process import ServiceProcess

from .drivers import EngineBrowser, Launcher

VOTES = "/votes"  # in the path of every request that carries votes: one vote, or a batch


@dataclass
class Device:
    """A voter's browser: its profile (kept across restarts), its own proxy (its network)."""

    name: str
    profile: Path
    proxy: FaultProxy
    browser: EngineBrowser | None = None

    @property
    def window(self) -> EngineBrowser:
        assert self.browser is not None, f"{self.name} is closed"
        return self.browser

    def settled_votes(self, receipts: int, timeout_ms: int = SETTLE_TIMEOUT_MS) -> dict:
        """Waits until no vote on this device waits to be sent and `receipts` are confirmed
        (the page must be on the service's origin)."""
        return self.window.run(SETTLED_VOTES, [receipts, timeout_ms])

    def nudge_as_if_reconnected(self) -> None:
        """What the browser does when its network comes back; a proxy's return has no event."""
        self.window.run(DISPATCH_ONLINE)


@dataclass
class EngineLab:
    engine: str
    service: ServiceProcess
    launcher: Launcher
    workdir: Path
    ledger: Tally
    polls: list[dict] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    def create_poll(self, question: str = "Which colour?", options: tuple[str, ...] = ("Red", "Blue")) -> dict:
        poll = self.service.create_poll(question, options)
        self.polls.append(poll)
        return poll

    def poll_url(self, poll: dict) -> str:
        return self.service.poll_url(poll)

    def new_device(self) -> Device:
        """A browser on a fresh profile, behind a fault proxy of its own."""
        name = f"device-{len(self.devices) + 1}"
        device = Device(name, self.workdir / name, FaultProxy().start())
        self.devices.append(device)
        self.launch(device)
        return device

    def launch(self, device: Device) -> EngineBrowser:
        assert device.browser is None, f"{device.name} is already open"
        device.browser = self.launcher.launch(device.profile, device.proxy.url)
        return device.browser

    def close(self, device: Device) -> None:
        if device.browser is not None:
            browser, device.browser = device.browser, None
            browser.close()

    def restart(self, device: Device) -> EngineBrowser:
        """The browser closed and launched again on the same profile."""
        self.close(device)
        return self.launch(device)

    def close_all(self) -> None:
        for device in self.devices:
            try:
                self.close(device)
            finally:
                device.proxy.stop()

    def prove_zero_loss(self, devices: list[Device], expected_cast: int) -> Tally:
        """e2e/loss's proof, as is: every vote confirmed with a receipt that verifies and matches
        the stored ballot, and counted exactly once. Its Lab needs only the service and polls."""
        proof = Lab(
            service=self.service,
            browser=None,  # type: ignore[arg-type]  # the proof reads the devices, not a browser
            browser_type=None,  # type: ignore[arg-type]
            launch_args={},
            workdir=self.workdir,
            traces=self.workdir / "traces",
            ledger=self.ledger,
            polls=self.polls,
        )
        return proof.prove_zero_loss(devices, expected_cast)  # type: ignore[arg-type]
