"""Schemathesis hooks for Schemas/openapi.yaml (used by Tools/scripts/fuzz-api.sh).

Bundles (application/vnd.readersync.bundle) are binary: generated values are sent as their bytes, so the
server's bundle reader sees arbitrary input, which it must refuse with a 400 problem (never a 500 or a hang).
Pull pages are bundles too: they are taken as opaque bytes (their format is checked by the Swift tests).
"""
import schemathesis


@schemathesis.serializer("application/vnd.readersync.bundle")
def bundle(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


@schemathesis.deserializer("application/vnd.readersync.bundle")
def bundle_page(ctx, response):
    return response.content.decode("latin-1")
