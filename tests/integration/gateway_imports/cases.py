"""Small upload bodies with good and bad rows, and the exact error report each must produce."""

from __future__ import annotations

NDJSON_LINES = [
    '{"kind":"count","store":"s0","sku":"v0","on_hand":5,"version":3}',
    '{"kind":"count",',
    "",
    '{"kind":"count","store":"s0","sku":"v1","on_hand":-1,"version":1}',
    '{"kind":"delta","store":"s1","sku":"v1","type":"sale","delta":-2,"key":"sale-1"}',
    '{"kind":"delta","store":"s1","sku":"v1","type":"receipt","delta":-2,"key":"r-1"}',
    '{"kind":"count","store":"s0","sku":"nope","on_hand":1,"version":1}',
    '{"kind":"delta","store":"s9","sku":"v1","type":"receipt","delta":3,"key":"r-2"}',
    '{"kind":"count","store":"s0","sku":"v2","on_hand":"7","version":1}',
    '{"kind":"delta","store":"s0","sku":"v2","type":"sale","delta":-1}',
    '{"kind":"product","sku":"v3","name":"Shirt","price":1250,"currency":"EUR",'
    '"variants":["v4",{"sku":"v2","name":"M"}]}',
    '{"kind":"refund"}',
    "[1, 2]",
    '{"kind":"count","store":"s1","sku":"v2","on_hand":0,"counted_at":"2026-11-20T10:00:00Z"}',
]
NDJSON_BODY = ("\r\n".join(NDJSON_LINES) + "\n").encode()
NDJSON_ERRORS = [
    (2, "malformed_json"),
    (4, "negative_count"),
    (6, "bad_sign"),
    (7, "unmapped_sku"),
    (8, "unmapped_store"),
    (9, "wrong_type"),
    (10, "missing_field"),
    (12, "unknown_kind"),
    (13, "not_an_object"),
]

CSV_LINES = [
    "kind,store,sku,on_hand,version,counted_at,type,delta,key,name,price,currency,variants",
    "count,s0,v0,5,3,,,,,,,,",
    "count,s0,v1,-1,1,,,,,,,,",
    "delta,s1,v1,,,,sale,-2,sale-1,,,,",
    "delta,s1,v1,,,,receipt,-2,r-1,,,,",
    "count,s0,v2,seven,1,,,,,,,,",
    'product,,v3,,,,,,,"Shirt, ""large""',
    'second line",1250,EUR,v4;v2',
    "count,s0,v0,1,2,,,,,,,,,,,,,",
    "delta,s0,v0,,,,sale,-1,,,,,",
    "count,s0,v9,1,1",
]
CSV_BODY = ("\n".join(CSV_LINES)).encode()  # no newline at the end: the last row still counts
CSV_ERRORS = [
    (3, "negative_count"),
    (5, "bad_sign"),
    (6, "wrong_type"),
    (9, "malformed_csv"),
    (10, "missing_field"),
    (11, "unmapped_sku"),
]


async def in_chunks(body: bytes, size: int):
    """The body as a stream of `size`-byte chunks, so lines break across chunks."""
    for start in range(0, len(body), size):
        yield body[start : start + size]
