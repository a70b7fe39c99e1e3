import codecs

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError

# The stubs predate get_encoding, which refuses non-text codecs such as bz2_codec.
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]
from rest_framework.utils import json


class DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")


def object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # The stdlib keeps the last of repeated keys; another reader (a proxy, a log, an audit
    # tool) may keep the first, so the same body would mean two things.
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(key)
        obj[key] = value
    return obj


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, but a key repeated in an object, or a body nested deeper than
    Python's decoder can follow, is a 400 like any other malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        parse_constant = json.strict_constant if self.strict else None
        try:
            return json.loads(
                codecs.getreader(encoding)(stream).read(),
                parse_constant=parse_constant,
                object_pairs_hook=object_without_duplicate_keys,
            )
        except RecursionError as error:
            raise ParseError(_("JSON parse error - nested too deeply.")) from error
        except ValueError as error:
            raise ParseError(_("JSON parse error - {detail}").format(detail=error)) from error
