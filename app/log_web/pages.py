"""/verify: where a voter checks a saved receipt against the public ballot log, on any device."""

from __future__ import annotations

from litestar import MediaType, Response
from litestar.response import Template

from app.edge.assets import AssetsNotBuilt, load_assets
from app.edge.deps import SettingsDep
from app.edge.http import get_or_head

# The page holds no data: the service worker keeps a copy, and the checks run on the device.
VERIFY_CACHE_CONTROL = "no-cache"


@get_or_head("/verify", include_in_schema=False)
async def verify_page(settings: SettingsDep) -> Template | Response[str]:
    try:
        assets = load_assets(settings.dist_dir)
    except AssetsNotBuilt as error:
        return Response(f"The page's assets are not built. {error}", status_code=503, media_type=MediaType.TEXT)
    headers = {"cache-control": VERIFY_CACHE_CONTROL, "content-security-policy": assets.content_security_policy()}
    return Template("verify.html", context={"assets": assets.links}, headers=headers)
