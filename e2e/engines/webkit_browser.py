"""A small WebKitGTK browser for WebKitWebDriver that keeps its data between runs.

Debian's MiniBrowser uses an ephemeral data store under automation, so IndexedDB and the service
worker vanish when it restarts; this one stores them in --data-dir, as a voter's browser does.
It runs with the system Python (PyGObject: python3-gi, gir1.2-webkit2-4.1), not the venv:

    /usr/bin/python3 webkit_browser.py --automation --data-dir=DIR [--proxy=http://HOST:PORT]
"""

import argparse
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--automation", action="store_true")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--proxy")
    options, _ = parser.parse_known_args()

    manager = WebKit2.WebsiteDataManager(
        base_data_directory=f"{options.data_dir}/data", base_cache_directory=f"{options.data_dir}/cache"
    )
    if options.proxy:
        # Loopback included: the service under test is on 127.0.0.1, behind the fault proxy.
        settings = WebKit2.NetworkProxySettings.new(options.proxy, [])
        manager.set_network_proxy_settings(WebKit2.NetworkProxyMode.CUSTOM, settings)
    context = WebKit2.WebContext(website_data_manager=manager)
    context.set_automation_allowed(options.automation)
    windows = []

    def create_web_view(session: WebKit2.AutomationSession) -> WebKit2.WebView:
        view = WebKit2.WebView(web_context=context, is_controlled_by_automation=True)
        window = Gtk.Window()
        window.set_default_size(1024, 768)
        window.add(view)
        window.show_all()
        window.connect("destroy", lambda _: windows.remove(window))
        view.connect("close", lambda _: window.destroy())
        windows.append(window)
        return view

    def automation_started(_: WebKit2.WebContext, session: WebKit2.AutomationSession) -> None:
        info = WebKit2.ApplicationInfo()
        info.set_name("vote-webkit")
        info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
        session.set_application_info(info)
        session.connect("create-web-view", create_web_view)

    context.connect("automation-started", automation_started)
    if not options.automation:
        create_web_view(None)
    Gtk.main()


if __name__ == "__main__":
    sys.exit(main())
