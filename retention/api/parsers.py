"""The API's JSON parser (a module of its own: DRF's settings import it while views load)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No record the API takes nests deeper than a few levels; far deeper input is refused
# before any serializer walks it.
MAX_JSON_DEPTH = 32


def _depth_exceeds(data, limit: int) -> bool:
    """Whether lists and objects in `data` nest deeper than `limit` (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400) input nested deeper than MAX_JSON_DEPTH, which
    otherwise ends in a RecursionError and a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
        else:
            if not _depth_exceeds(data, MAX_JSON_DEPTH):
                return data
        raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
