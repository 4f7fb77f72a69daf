#!/usr/bin/env python3
"""A second, independent implementation of ReaderSync's delta-bundle format (Schemas/bundle-format.md).

Written from the specification, not from the Swift code, it serves three purposes:
  * it checks that the specification is complete: a reader and a writer built from it alone must agree with
    ReaderSync byte for byte (the worked example of the spec is produced and verified with it);
  * it is the oracle of Tools/scripts/fuzz-bundles.sh: for every mutant bundle, ReaderSync (`readersync bundle
    inspect`) and this reader must both accept it, or both refuse it with the same message;
  * it repairs mutants (lengths and CRC-32s) so that fuzzing reaches the payload decoder.

Usage:
  rsbundle.py inspect FILE            print the header and changes as JSON, or `error: MESSAGE` (exit 1)
  rsbundle.py example                 print the spec's worked example (hex dump, header table, payload)
  rsbundle.py repair IN OUT           fix up payload length, uncompressed length and both CRCs of IN
  rsbundle.py mutate IN OUT SEED MODE mutate IN (MODE raw, deep or repair) into OUT

Only the Python standard library is needed (zlib for deflate and CRC-32).
"""
import json
import math
import random
import struct
import sys
import zlib

MAGIC = bytes([0x89, 0x52, 0x53, 0x42, 0x0D, 0x0A, 0x1A, 0x0A])
CURRENT_VERSION = 2
MAX_HEADER = 128 << 20
MAX_ORIGINS = 1_000_000
MAX_RANGES = 2_000_000
MAX_ACCOUNT = 1024
MAX_CHANGES = 1 << 32
MAX_SEQ = (1 << 63) - 1
MAX_PAYLOAD = 1 << 40
MAX_UNCOMPRESSED = 1 << 44
MAX_BLOCK_CHANGES = 4096
MAX_BLOCK_BODY = 64 << 20
TARGET_BLOCK_BODY = 1 << 20
MAX_STRING = 16 << 20
MAX_KEY = 64 << 10
MAX_KEYS = 4 << 20
MAX_KEY_BYTES = 256 << 20
MIN_BYTES_PER_CHANGE = 7
MAX_RATIO = 1032
MAX_ACKS = 2
INFLATE_CHUNK = 64 * 1024

ENTITIES = {1: "article", 2: "comment", 3: "readState"}
SCOPES = {0: "shared", 1: "private"}
FIELDS = {1: ("content", 1), 2: ("created", 2), 3: ("body", 2), 4: ("deleted", 2),
          5: ("read", 3), 6: ("progress", 3), 7: ("saved", 3)}
FIELD_CODE = {(name, entity): code for code, (name, entity) in FIELDS.items()}
POW10 = [float(10 ** e) for e in range(23)]


class Invalid(Exception):
    """A refused bundle; the message is ReaderSync's."""


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def zigzag(n):
    return ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF


def unzigzag(z):
    return (z >> 1) ^ -(z & 1)


def wrap_i64(n):
    n &= 0xFFFFFFFFFFFFFFFF
    return n - (1 << 64) if n >= 1 << 63 else n


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(text):
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    return varint(len(raw)) + raw


def uuid_bytes(text):
    raw = bytes.fromhex(text.replace("-", ""))
    assert len(raw) == 16
    return raw


def uuid_text(raw):
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def printable(text, limit=80):
    out = ""
    for ch in text:
        if len(out) >= limit:
            out += "…"
            break
        c = ord(ch)
        out += "\\u{%04X}" % c if c < 0x20 or 0x7F <= c <= 0x9F else ch
    return out


def round_half_away(x):
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


def decimal(d):
    """(m, e) with m / 10^e == d bit for bit, |m| <= 2^53, e <= 15, smallest e first; else None."""
    if not math.isfinite(d) or (d == 0 and math.copysign(1.0, d) < 0):
        return None
    for e in range(16):
        m = round_half_away(d * POW10[e])
        if abs(m) > 1 << 53:
            return None
        if struct.pack("<d", float(m) / POW10[e]) == struct.pack("<d", d):
            return m, e
    return None


class Cursor:
    """Bounds-checked reading; failures name `context` and the item, as ReaderSync's messages do."""

    def __init__(self, data, context, start=0, end=None):
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end
        self.context = context

    def fail(self, message):
        return Invalid(f"{self.context}: {message}")

    @property
    def remaining(self):
        return self.end - self.pos

    def take(self, count, what):
        if count < 0 or count > self.remaining:
            raise self.fail(f"{what} runs past the end ({count} bytes needed, {self.remaining} left)")
        start = self.pos
        self.pos += count
        return self.data[start:self.pos]

    def u8(self, what):
        return self.take(1, what)[0]

    def fixed(self, width, what):
        return int.from_bytes(self.take(width, what), "little")

    def varint(self, what):
        value = 0
        for i in range(10):
            if self.pos >= self.end:
                raise self.fail(f"{what} runs past the end (unfinished varint)")
            byte = self.data[self.pos]
            self.pos += 1
            if i == 9 and byte > 1:
                raise self.fail(f"{what} is a varint larger than 64 bits")
            value |= (byte & 0x7F) << (7 * i)
            if byte & 0x80 == 0:
                if i > 0 and byte == 0:
                    raise self.fail(f"{what} is a varint with redundant trailing zero groups")
                return value
        raise self.fail(f"{what} is a varint longer than 10 bytes")

    def signed(self, what):
        return unzigzag(self.varint(what))

    def string(self, limit, what):
        length = self.varint(f"the length of {what}")
        if length > limit:
            raise self.fail(f"{what} is {length} bytes long (limit {limit})")
        raw = self.take(length, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None


# MARK: - Header

def minimal_header(version):
    return 68 + 1 + 4 if version == 1 else 78 + 1 + 1 + 4


def newer(version):
    return Invalid(f"bundle format version {version} is newer than this build supports ({CURRENT_VERSION}); upgrade ReaderSync")


def check_prefix(data):
    total = len(data)
    if total == 0:
        raise Invalid("not a ReaderSync bundle (it is empty)")
    m = min(total, 8)
    if data[:m] != MAGIC[:m]:
        raise Invalid("not a ReaderSync bundle (wrong magic)")
    if total < 14:
        raise Invalid(f"bundle is truncated: it is {total} bytes, shorter than the smallest header (73 bytes)")
    version, length = struct.unpack_from("<HI", data, 8)
    if version == 0:
        raise Invalid("bundle format version 0 is not valid")
    if version > CURRENT_VERSION:
        if not (18 <= length <= MAX_HEADER and length <= total):
            raise newer(version)
        return length
    minimum = minimal_header(version)
    if not (minimum <= length <= MAX_HEADER):
        raise Invalid(f"bundle header length {length} is invalid (minimum {minimum}, limit {MAX_HEADER})")
    if length > total:
        raise Invalid(f"bundle is truncated: the header is {length} bytes, the bundle has {total}")
    return length


def index_tables(account, origins, ranges, context):
    def fail(message):
        return Invalid(f"{context}: {message}")
    if len(account.encode()) > MAX_ACCOUNT:
        raise fail(f"the source account is {len(account.encode())} bytes long (limit {MAX_ACCOUNT})")
    index = {}
    for i, (rid, acct) in enumerate(origins):
        if len(acct.encode()) > MAX_ACCOUNT:
            raise fail(f"the account of origin {uuid_text(rid)} is {len(acct.encode())} bytes long (limit {MAX_ACCOUNT})")
        if (rid, acct.encode()) in index:
            raise fail(f"origin {uuid_text(rid)} ({printable(acct)}) is listed twice")
        index[(rid, acct.encode())] = i
    seen = set()
    for r in ranges:
        name = f"{uuid_text(r['origin'])} ({printable(r['account'])}, {SCOPES[r['scope']]})"
        if (r["origin"], r["account"].encode()) not in index:
            raise fail(f"a range names origin {name}, which is not in the origin table")
        if r["from"] > r["to"]:
            raise fail(f"the range of origin {name} runs backwards: ({r['from']}, {r['to']}]")
        if r["to"] > MAX_SEQ:
            raise fail(f"the range of origin {name} ends at {r['to']}, past the largest sequence number {MAX_SEQ}")
        key = (r["origin"], r["account"].encode(), r["scope"])
        if key in seen:
            raise fail(f"origin {name} has two ranges")
        seen.add(key)
    return index


def decode_header(hb):
    stored = int.from_bytes(hb[-4:], "little")
    computed = crc32(hb[:-4])
    if stored != computed:
        raise Invalid(f"bundle header checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})")
    r = Cursor(hb, "bundle header is corrupt", 0, len(hb) - 4)
    r.take(8, "the magic")
    version = r.fixed(2, "the format version")
    if version > CURRENT_VERSION:
        raise newer(version)
    if version < 1:
        raise Invalid(f"bundle format version {version} is not valid")
    length = r.fixed(4, "the header length")
    if length != len(hb):
        raise Invalid(f"bundle header is corrupt: it says it is {length} bytes, but {len(hb)} were read")
    h = {"formatVersion": version, "headerLength": length}
    h["schemaVersion"] = r.fixed(2, "the schema version")
    if version >= 2:
        kind = r.u8("the bundle kind")
        if kind != 0:
            raise Invalid(f"bundle kind {kind} is not known to this build (0, a delta); upgrade ReaderSync")
        flags = r.u8("the flags")
        if flags != 0:
            raise Invalid(f"bundle header is invalid: unknown flags 0x{flags:x}")
    h["source"] = bytes(r.take(16, "the source replica id"))
    h["writtenAt"] = None
    if version >= 2:
        raw = r.fixed(8, "the time the bundle was written")
        h["writtenAt"] = None if raw == 0 else wrap_i64(raw)
    change_count = r.fixed(8, "the change count")
    payload_length = r.fixed(8, "the payload length")
    uncompressed = r.fixed(8, "the uncompressed length")
    checksum = r.fixed(4, "the payload checksum")
    origin_count = r.fixed(4, "the origin count")
    range_count = r.fixed(4, "the range count")
    if change_count > MAX_CHANGES:
        raise Invalid(f"bundle header claims {change_count} changes (limit {MAX_CHANGES})")
    if payload_length > MAX_PAYLOAD:
        raise Invalid(f"bundle header claims a payload of {payload_length} bytes (limit {MAX_PAYLOAD})")
    if uncompressed > MAX_UNCOMPRESSED:
        raise Invalid(f"bundle header claims the payload inflates to {uncompressed} bytes (limit {MAX_UNCOMPRESSED})")
    if origin_count > MAX_ORIGINS:
        raise Invalid(f"bundle header claims {origin_count} origins (limit {MAX_ORIGINS})")
    if range_count > MAX_RANGES:
        raise Invalid(f"bundle header claims {range_count} ranges (limit {MAX_RANGES})")
    needed = origin_count * 17 + range_count * (21 if version == 1 else 29)
    if needed > r.remaining:
        raise Invalid(f"bundle header is corrupt: {origin_count} origins and {range_count} ranges need at least "
                      f"{needed} bytes, the header has {r.remaining} left")
    h["account"] = r.string(MAX_ACCOUNT, "the source account")
    origins = []
    for i in range(origin_count):
        rid = bytes(r.take(16, f"the id of origin {i}"))
        origins.append((rid, r.string(MAX_ACCOUNT, f"the account of origin {i}")))
    ranges = []
    for i in range(range_count):
        index = r.fixed(4, f"the origin index of range {i}")
        if index >= origin_count:
            raise Invalid(f"bundle header is corrupt: range {i} names origin index {index}, but the table has {origin_count} origins")
        scope = r.u8(f"the scope of range {i}")
        if scope not in SCOPES:
            raise Invalid(f"bundle header is corrupt: range {i} has unknown scope {scope}")
        start = r.fixed(8, f"the start of range {i}")
        end = r.fixed(8, f"the end of range {i}")
        incarnation = r.fixed(8, f"the incarnation of range {i}") if version >= 2 else 0
        rid, acct = origins[index]
        ranges.append({"origin": rid, "account": acct, "scope": scope, "from": start, "to": end,
                       "toIncarnation": incarnation, "originIndex": index})
    acks = []
    if version >= 2:
        count = r.u8("the acknowledgement count")
        if count > MAX_ACKS:
            raise Invalid(f"bundle header is invalid: {count} acknowledgements (limit {MAX_ACKS})")
        for i in range(count):
            rid = bytes(r.take(16, f"the origin of acknowledgement {i}"))
            acct = r.string(MAX_ACCOUNT, f"the account of acknowledgement {i}")
            scope = r.u8(f"the scope of acknowledgement {i}")
            if scope not in SCOPES:
                raise Invalid(f"bundle header is corrupt: acknowledgement {i} has unknown scope {scope}")
            seq = r.fixed(8, f"the seq of acknowledgement {i}")
            if seq > MAX_SEQ:
                raise Invalid(f"bundle header is invalid: acknowledgement {i} claims seq {seq}, past {MAX_SEQ}")
            incarnation = r.fixed(8, f"the incarnation of acknowledgement {i}")
            acks.append({"origin": rid, "account": acct, "scope": scope, "seq": seq, "incarnation": incarnation})
    if r.remaining != 0:
        raise Invalid(f"bundle header is corrupt: {r.remaining} unexpected bytes before its checksum")
    index_tables(h["account"], origins, ranges, "bundle header is invalid")
    span = min(sum(x["to"] - x["from"] for x in ranges), (1 << 64) - 1)
    if change_count > span:
        raise Invalid(f"bundle header claims {change_count} changes, but its ranges cover only {span} sequence numbers")
    minimum = change_count * MIN_BYTES_PER_CHANGE + 1
    if uncompressed < minimum:
        raise Invalid(f"bundle header claims {change_count} changes in {uncompressed} uncompressed bytes (at least {minimum} needed)")
    if uncompressed // MAX_RATIO > payload_length:
        raise Invalid(f"bundle header claims {payload_length} compressed bytes inflate to {uncompressed} "
                      f"(more than deflate's {MAX_RATIO}:1)")
    h.update(changeCount=change_count, payloadLength=payload_length, uncompressedLength=uncompressed,
             checksum=checksum, origins=origins, ranges=ranges, acknowledgements=acks)
    return h


# MARK: - Payload

class Payload:
    """The inflated payload, produced on demand in chunks of at most 64 KiB as ReaderSync inflates it, so that
    errors are found in the same order."""

    def __init__(self, compressed, limit):
        self.z = zlib.decompressobj()
        self.pending = bytes(compressed)
        self.limit = limit
        self.total_out = 0
        self.finished = False
        self.trailing = 0
        self.out = b""
        self.pos = 0

    def inflate(self):
        if self.finished:
            return b""
        room = min(INFLATE_CHUNK, self.limit - min(self.total_out, self.limit) + 1)
        try:
            chunk = self.z.decompress(self.pending, room)
        except zlib.error as error:
            text = str(error)
            if text.startswith("Error 2 "):
                raise Invalid("bundle payload is corrupt: compressed data is corrupt (the stream asks for a preset dictionary)") from None
            message = text.split(": ", 1)[1] if ": " in text else "Z_DATA_ERROR"
            raise Invalid(f"bundle payload is corrupt: compressed data is corrupt ({message})") from None
        self.pending = self.z.unconsumed_tail
        self.total_out += len(chunk)
        if self.total_out > self.limit:
            raise Invalid(f"bundle payload is corrupt: it inflates to more than the {self.limit} bytes its header declares")
        if self.z.eof:
            self.finished = True
            self.trailing += len(self.z.unused_data)
            self.pending = b""
        return chunk

    def fill(self):
        while self.pos >= len(self.out):
            if self.finished:
                raise Invalid("bundle payload is corrupt: the compressed stream ends before the end marker")
            self.out = self.inflate()
            self.pos = 0
            if self.out or self.finished:
                continue
            if not self.pending:
                raise Invalid("bundle payload is corrupt: compressed data ends before the zlib stream does")

    def byte(self):
        self.fill()
        b = self.out[self.pos]
        self.pos += 1
        return b

    def varint(self, what):
        value = 0
        for i in range(10):
            byte = self.byte()
            if i == 9 and byte > 1:
                raise Invalid(f"bundle payload is corrupt: {what} is a varint larger than 64 bits")
            value |= (byte & 0x7F) << (7 * i)
            if byte & 0x80 == 0:
                if i > 0 and byte == 0:
                    raise Invalid(f"bundle payload is corrupt: {what} is a varint with redundant trailing zero groups")
                return value
        raise Invalid(f"bundle payload is corrupt: {what} is a varint longer than 10 bytes")

    def bytes(self, count):
        parts = []
        while count > 0:
            self.fill()
            take = min(count, len(self.out) - self.pos)
            parts.append(self.out[self.pos:self.pos + take])
            self.pos += take
            count -= take
        return b"".join(parts)

    def finish(self):
        extra = len(self.out) - self.pos
        self.out, self.pos = b"", 0
        while not self.finished and extra == 0:
            extra += len(self.inflate())
            if self.finished or extra > 0:
                break
            if not self.pending:
                break
        if extra:
            raise Invalid(f"bundle payload is corrupt: {extra} bytes follow the end marker")
        if not self.finished:
            raise Invalid("bundle payload is corrupt: compressed data ends before the zlib stream does")
        if self.trailing:
            raise Invalid(f"bundle payload is corrupt: {self.trailing} bytes follow the end of the zlib stream")
        if self.total_out != self.limit:
            raise Invalid(f"bundle payload is corrupt: it inflates to {self.total_out} bytes, but the header says {self.limit}")


class KeyTable:
    def __init__(self):
        self.keys = []
        self.index = {}
        self.total = 0

    def intern(self, text):
        raw = text.encode()
        if raw in self.index:
            return self.index[raw], False
        self.index[raw] = len(self.keys)
        self.keys.append(text)
        self.total += len(raw)
        return len(self.keys) - 1, True


def decode_block(body, count, version, origins, keys, block, first):
    r = Cursor(body, f"bundle payload is corrupt: block {block}")
    n = lambda i: first + i  # noqa: E731
    origin = []
    for i in range(count):
        index = r.varint(f"the origin of change {n(i)}")
        if index >= len(origins):
            raise Invalid(f"change {n(i)}: origin index {index} is not in the origin table ({len(origins)} origins)")
        origin.append(index)
    seqs, last = [], {}
    for i in range(count):
        delta = r.signed(f"the seq of change {n(i)}")
        seq = (last.get(origin[i], 0) + delta) & 0xFFFFFFFFFFFFFFFF
        last[origin[i]] = seq
        seqs.append(seq)

    def hlc(entry, last_millis, i):
        millis = last_millis + unzigzag(entry >> 1)
        if not (-(1 << 63) <= millis < 1 << 63) or not (0 <= millis < 1 << 48):
            raise Invalid(f"change {n(i)}: hlc milliseconds out of range")
        counter = 0
        if entry & 1:
            counter = r.varint(f"the hlc counter of change {n(i)}")
            if not 1 <= counter <= 65535:
                raise Invalid(f"change {n(i)}: hlc counter {counter} out of range (1…65535)")
        return millis, counter

    hlcs = []
    if version >= 2:
        base = r.varint(f"the hlc base of block {block}")
        if base >= 1 << 48:
            raise Invalid(f"bundle payload is corrupt: block {block}: hlc base {base} is out of range")
        width = r.u8(f"the hlc width of block {block}")
        if not 1 <= width <= 8:
            raise Invalid(f"bundle payload is corrupt: block {block}: hlc width {width} is not 1…8")
        planes = r.take(width * count, f"the hlc planes of block {block}")
        last_millis = base
        for i in range(count):
            entry = sum(planes[p * count + i] << (8 * p) for p in range(width))
            last_millis, counter = hlc(entry, last_millis, i)
            hlcs.append((last_millis, counter))
    else:
        last_millis = 0
        for i in range(count):
            entry = r.varint(f"the hlc of change {n(i)}")
            last_millis, counter = hlc(entry, last_millis, i)
            hlcs.append((last_millis, counter))
    entities = []
    for i in range(count):
        tag = r.u8(f"the entity of change {n(i)}")
        if tag not in ENTITIES:
            raise Invalid(f"change {n(i)}: unknown entity kind {tag}")
        entities.append(tag)
    key_ids, fields = [], []
    if version >= 2:
        size = len(keys.keys)
        introduced = []
        for i in range(count):
            ref = r.varint(f"the key of change {n(i)}")
            if ref == 0:
                if size >= MAX_KEYS:
                    raise Invalid(f"change {n(i)}: the bundle's key table is full ({MAX_KEYS} keys)")
                key_ids.append(size)
                size += 1
                introduced.append(i)
            else:
                if ref > size:
                    raise Invalid(f"change {n(i)}: key reference {ref} is past the bundle's key table ({size} entries)")
                key_ids.append(size - ref)
        for i in introduced:
            text = r.string(MAX_KEY, f"the key of change {n(i)}")
            if keys.total + len(text.encode()) > MAX_KEY_BYTES:
                raise Invalid(f"change {n(i)}: the bundle's keys pass {MAX_KEY_BYTES} bytes")
            entry, new = keys.intern(text)
            if not new:
                raise Invalid(f"change {n(i)}: key '{printable(text, 60)}' is already in the bundle's key table (entry {entry})")
        for i in range(count):
            code = r.u8(f"the field of change {n(i)}")
            if code not in FIELDS:
                raise Invalid(f"change {n(i)}: unknown field code {code}")
            fields.append(code)
    else:
        block_keys = []
        for i in range(count):
            ref = r.varint(f"the key of change {n(i)}")
            if ref < len(block_keys):
                key_ids.append(block_keys[ref])
            elif ref == len(block_keys):
                text = r.string(MAX_STRING, f"the key of change {n(i)}")
                entry, _ = keys.intern(text)
                if len(keys.keys) > MAX_KEYS or keys.total > MAX_KEY_BYTES:
                    raise Invalid(f"change {n(i)}: the bundle holds more than {MAX_KEYS} keys or {MAX_KEY_BYTES} bytes of keys")
                block_keys.append(entry)
                key_ids.append(entry)
            else:
                raise Invalid(f"change {n(i)}: key reference {ref} is past the block's key table ({len(block_keys)} entries)")
        block_fields = []
        for i in range(count):
            ref = r.varint(f"the field of change {n(i)}")
            if ref < len(block_fields):
                name = block_fields[ref]
            elif ref == len(block_fields):
                name = r.string(MAX_STRING, f"the field of change {n(i)}")
                block_fields.append(name)
            else:
                raise Invalid(f"change {n(i)}: field reference {ref} is past the block's field table ({len(block_fields)} entries)")
            code = FIELD_CODE.get((name, entities[i]))
            if code is None:
                raise Invalid(f"change {n(i)}: field '{printable(name)}' is not allowed for {ENTITIES[entities[i]]}")
            fields.append(code)
    tags = []
    for i in range(count):
        tag = r.u8(f"the value type of change {n(i)}")
        if tag > 7 or (tag == 7 and version < 2):
            raise Invalid(f"change {n(i)}: unknown value type {tag}")
        tags.append(tag)
    values, last_int = [], 0
    for i in range(count):
        tag = tags[i]
        if tag == 0:
            values.append(None)
        elif tag in (1, 2):
            values.append(tag == 2)
        elif tag in (3, 6):
            delta = r.signed(f"the value of change {n(i)}")
            base = last_int if tag == 3 else hlcs[i][0]
            last_int = wrap_i64(base + delta)
            values.append(("int", last_int))
        elif tag == 4:
            values.append(("double", struct.unpack("<d", bytes(r.take(8, f"the value of change {n(i)}")))[0]))
        elif tag == 7:
            m = r.signed(f"the value of change {n(i)}")
            e = r.u8(f"the exponent of change {n(i)}")
            if abs(m) > 1 << 53 or e > 15:
                raise Invalid(f"change {n(i)}: decimal {m}e-{e} is out of range")
            values.append(("double", float(m) / POW10[e]))
        else:
            values.append(r.string(MAX_STRING, f"the value of change {n(i)}"))
    if r.remaining:
        raise Invalid(f"bundle payload is corrupt: block {block}: {r.remaining} unexpected bytes after the last column")
    return [dict(origin=origin[i], seq=seqs[i], millis=hlcs[i][0], counter=hlcs[i][1], entity=entities[i],
                 key=key_ids[i], field=fields[i], value=values[i]) for i in range(count)]


def read(data):
    """(header, changes) of a bundle, or raises Invalid with ReaderSync's message."""
    data = bytes(data)
    length = check_prefix(data)
    h = decode_header(data[:length])
    available = len(data) - length
    if available < h["payloadLength"]:
        raise Invalid(f"bundle is truncated: header says {h['payloadLength']} payload bytes, file has {available}")
    if available > h["payloadLength"]:
        raise Invalid(f"bundle has {available - h['payloadLength']} unexpected bytes after its {h['payloadLength']}-byte payload")
    payload = data[length:]
    computed = crc32(payload)
    if computed != h["checksum"]:
        raise Invalid(f"bundle checksum mismatch (header 0x{h['checksum']:08x}, payload 0x{computed:08x})")
    ranges = {(x["originIndex"], x["scope"]): (x["from"], x["to"]) for x in h["ranges"]}
    last = {}
    stream = Payload(payload, h["uncompressedLength"])
    keys = KeyTable()
    changes = []
    block = 0
    while True:
        block += 1
        count = stream.varint(f"the change count of block {block}")
        if count == 0:
            break
        if count > MAX_BLOCK_CHANGES:
            raise Invalid(f"bundle payload is corrupt: block {block} claims {count} changes (limit {MAX_BLOCK_CHANGES})")
        if count > h["changeCount"] - len(changes):
            raise Invalid(f"bundle payload is corrupt: block {block} brings the change count past the {h['changeCount']} the header declares")
        body_length = stream.varint(f"the length of block {block}")
        minimum = count * MIN_BYTES_PER_CHANGE
        if not minimum <= body_length <= MAX_BLOCK_BODY:
            raise Invalid(f"bundle payload is corrupt: block {block} is {body_length} bytes long ({minimum} to {MAX_BLOCK_BODY} allowed for {count} changes)")
        body = stream.bytes(body_length)
        decoded = decode_block(body, count, h["formatVersion"], h["origins"], keys, block, len(changes) + 1)
        for i, c in enumerate(decoded):
            number = len(changes) + i + 1
            name, field_entity = FIELDS[c["field"]]
            if field_entity != c["entity"]:
                raise Invalid(f"change {number}: field '{name}' is not allowed for {ENTITIES[c['entity']]}")
            scope = 1 if c["entity"] == 3 else 0
            who = f"{uuid_text(h['origins'][c['origin']][0])} ({SCOPES[scope]})"
            if (c["origin"], scope) not in ranges:
                raise Invalid(f"change {number}: the bundle has no range for origin {who}")
            start, end = ranges[(c["origin"], scope)]
            if not start < c["seq"] <= end:
                raise Invalid(f"change {number}: seq {c['seq']} of origin {who} is outside the bundle's range ({start}, {end}]")
            previous = last.get((c["origin"], scope))
            if previous is not None and c["seq"] <= previous:
                raise Invalid(f"change {number}: seq {c['seq']} of origin {who} does not follow the previous one ({previous})")
            last[(c["origin"], scope)] = c["seq"]
        changes.extend(decoded)
    if len(changes) != h["changeCount"]:
        raise Invalid(f"bundle payload is corrupt: it holds {len(changes)} changes, but the header says {h['changeCount']}")
    stream.finish()
    for c in changes:
        c["key"] = keys.keys[c["key"]]
        c["originID"], c["account"] = uuid_text(h["origins"][c["origin"]][0]), h["origins"][c["origin"]][1]
    return h, changes


# MARK: - Writing (format 2)

class BlockEncoder:
    """One block of a format-2 payload, built a change at a time (changes are dicts with origin=(id bytes,
    account), seq, millis, counter, entity, key, field, value as None, True/False, ("int", n), ("double", x) or
    a str)."""

    NAMES = ("origin", "seq", "counter", "entity", "key", "keytext", "field", "tag", "value")

    def __init__(self):
        self.cols = {name: bytearray() for name in self.NAMES}
        self.entries, self.last_seq, self.last_int = [], {}, 0
        self.base = self.last_millis = 0

    def append(self, c, origin, keys):
        if not self.entries:
            self.base = self.last_millis = c["millis"]
        cols = self.cols
        cols["origin"] += varint(origin)
        cols["seq"] += varint(zigzag(wrap_i64(c["seq"] - self.last_seq.get(origin, 0))))
        self.last_seq[origin] = c["seq"]
        self.entries.append(zigzag(wrap_i64(c["millis"] - self.last_millis)) << 1 | (1 if c["counter"] else 0))
        if c["counter"]:
            cols["counter"] += varint(c["counter"])
        self.last_millis = c["millis"]
        cols["entity"].append(c["entity"])
        entry, new = keys.intern(c["key"])
        if new:
            cols["key"] += varint(0)
            cols["keytext"] += string(c["key"])
        else:
            cols["key"] += varint(len(keys.keys) - entry)
        cols["field"].append(FIELD_CODE[(c["field"], c["entity"])])
        v = c["value"]
        if v is None:
            cols["tag"].append(0)
        elif v is True or v is False:
            cols["tag"].append(2 if v else 1)
        elif isinstance(v, str):
            cols["tag"].append(5)
            cols["value"] += string(v)
        elif v[0] == "int":
            from_previous, from_time = zigzag(wrap_i64(v[1] - self.last_int)), zigzag(wrap_i64(v[1] - c["millis"]))
            if len(varint(from_time)) < len(varint(from_previous)):
                cols["tag"].append(6)
                cols["value"] += varint(from_time)
            else:
                cols["tag"].append(3)
                cols["value"] += varint(from_previous)
            self.last_int = v[1]
        else:
            d = decimal(v[1])
            if d and len(varint(zigzag(d[0]))) + 1 < 8:
                cols["tag"].append(7)
                cols["value"] += varint(zigzag(d[0])) + bytes([d[1]])
            else:
                cols["tag"].append(4)
                cols["value"] += struct.pack("<d", v[1])

    @property
    def count(self):
        return len(self.entries)

    @property
    def width(self):
        return max(1, (max(self.entries).bit_length() + 7) // 8)

    def hlc(self):
        w = self.width
        return varint(self.base) + bytes([w]) + b"".join(bytes((e >> (8 * p)) & 0xFF for e in self.entries) for p in range(w))

    @property
    def body_length(self):
        return sum(len(c) for c in self.cols.values()) + len(varint(self.base)) + 1 + self.width * self.count

    def columns(self):
        """The body's columns in order, the hlc column whole (base, width, planes, counters)."""
        c = self.cols
        return [("origin", c["origin"]), ("seq", c["seq"]), ("hlc", self.hlc() + c["counter"]), ("entity", c["entity"]),
                ("key", c["key"]), ("keytext", c["keytext"]), ("field", c["field"]), ("tag", c["tag"]), ("value", c["value"])]

    def take(self):
        body = b"".join(bytes(col) for _, col in self.columns())
        return varint(self.count) + varint(len(body)) + body


def write(source, account, schema, origins, ranges, changes, written_at=0, acknowledgements=(), level=6):
    """A format-2 bundle and its inflated payload: `origins` [(uuid text, account)], `ranges` [(origin index,
    scope, from, to, incarnation)], acknowledgements [(uuid text, account, scope, seq, incarnation)]. Blocks
    close at 4096 changes or once their body reaches 1 MiB, as ReaderSync's writer closes them."""
    origin_index = {(uuid_bytes(rid), acct): i for i, (rid, acct) in enumerate(origins)}
    keys = KeyTable()
    payload = bytearray()
    block = BlockEncoder()
    for c in changes:
        block.append(c, origin_index[(uuid_bytes(c["origin"][0]), c["origin"][1])], keys)
        if block.count >= MAX_BLOCK_CHANGES or block.body_length >= TARGET_BLOCK_BODY:
            payload += block.take()
            block = BlockEncoder()
    if block.count:
        payload += block.take()
    payload += b"\x00"
    compressed = zlib.compress(bytes(payload), level)
    head = bytearray(MAGIC) + struct.pack("<HIHBB", 2, 0, schema, 0, 0) + uuid_bytes(source)
    head += struct.pack("<QQQQIII", written_at & 0xFFFFFFFFFFFFFFFF, len(changes), len(compressed), len(payload),
                        crc32(compressed), len(origins), len(ranges))
    head += string(account)
    for rid, acct in origins:
        head += uuid_bytes(rid) + string(acct)
    for index, scope, start, end, incarnation in ranges:
        head += struct.pack("<IBQQQ", index, scope, start, end, incarnation)
    head.append(len(acknowledgements))
    for rid, acct, scope, seq, incarnation in acknowledgements:
        head += uuid_bytes(rid) + string(acct) + struct.pack("<BQQ", scope, seq, incarnation)
    struct.pack_into("<I", head, 10, len(head) + 4)
    head += struct.pack("<I", crc32(bytes(head)))
    return bytes(head) + compressed, bytes(payload)


# MARK: - The spec's worked example

EXAMPLE_T = 1_751_544_000_000  # 2025-07-03T12:00:00.000Z
EXAMPLE_ME = ("00112233-4455-6677-8899-aabbccddeeff", "alice")
EXAMPLE_LAPTOP = "ffeeddcc-bbaa-9988-7766-554433221100"


def example_changes():
    t = EXAMPLE_T
    def c(seq, millis, counter, entity, key, field, value):
        return dict(origin=EXAMPLE_ME, seq=seq, millis=millis, counter=counter, entity=entity, key=key,
                    field=field, value=value)
    return [
        c(1, t, 0, 3, "a1", "read", ("int", t)),
        c(2, t, 1, 3, "a1", "progress", ("double", 0.5)),
        c(3, t + 60_000, 0, 2, "alice:c1", "created", '{"article":"a1"}'),
        c(4, t + 60_000, 0, 2, "alice:c1", "body", "Nice piece ✓"),
        c(5, t + 90_000, 0, 3, "a1", "saved", ("int", t + 90_000)),
    ]


def example_bundle():
    return write(EXAMPLE_ME[0], "alice", 2, [EXAMPLE_ME],
                 [(0, 0, 0, 5, 0x0123456789ABCDEF), (0, 1, 0, 5, 0x0123456789ABCDEF)],
                 example_changes(), written_at=EXAMPLE_T + 120_000,
                 acknowledgements=[(EXAMPLE_LAPTOP, "alice", 1, 7, 0xFEDCBA9876543210)])


def hexdump(data):
    lines = []
    for off in range(0, len(data), 16):
        row = data[off:off + 16]
        hexes = " ".join(f"{b:02x}" for b in row[:8]) + ("  " + " ".join(f"{b:02x}" for b in row[8:]) if len(row) > 8 else "")
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{off:08x}  {hexes:<49} |{text}|")
    return "\n".join(lines)


# MARK: - Mutation (fuzzing)

def repair(data):
    """Recompute payloadLength, uncompressedLength (kept plausible) and both CRC-32s after a mutation of the
    inflated payload or of header fields, so that the mutant reaches the decoder behind the checksums."""
    data = bytearray(data)
    version, length = struct.unpack_from("<HI", data, 8)
    if len(data) < length or length < 18:
        return bytes(data)
    offsets = {1: (32, 40, 48, 56), 2: (42, 50, 58, 66)}.get(version)
    if offsets:
        count_at, payload_at, uncompressed_at, crc_at = offsets
        payload = bytes(data[length:])
        struct.pack_into("<Q", data, payload_at, len(payload))
        struct.pack_into("<I", data, crc_at, crc32(payload))
        try:
            inflated = zlib.decompressobj()
            size = len(inflated.decompress(payload, 1 << 26))
            change_count = struct.unpack_from("<Q", data, count_at)[0]
            struct.pack_into("<Q", data, uncompressed_at, max(size, min(change_count, 1 << 40) * MIN_BYTES_PER_CHANGE + 1))
        except zlib.error:
            pass
    struct.pack_into("<I", data, length - 4, crc32(bytes(data[:length - 4])))
    return bytes(data)


def mutate_bytes(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        n = len(data)
        if kind == 0 and n:
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1 and n:
            data[rng.randrange(n)] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif kind == 2:
            del data[rng.randrange(n + 1):]
        elif kind == 3:
            at = rng.randrange(n + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4 and n:
            a = rng.randrange(n)
            b = min(n, a + rng.randint(1, 64))
            data[a:a] = data[a:b]
        elif kind == 5 and n:
            a = rng.randrange(n)
            del data[a:a + rng.randint(1, 16)]
        elif kind == 6 and n >= 8:
            a = rng.randrange(n - 7)
            data[a:a + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, struct.pack("<Q", (1 << 63)), struct.pack("<Q", 1 << 32)])
    return bytes(data)


def mutate(data, rng, mode):
    if mode == "raw":
        return mutate_bytes(data, rng)
    length = struct.unpack_from("<I", data, 10)[0]
    header, payload = bytearray(data[:length]), data[length:]
    if mode == "repair":
        # Mutate header fields (not the frozen prefix), then repair the CRCs: the header checks decide.
        mutated = mutate_bytes(header[14:-4], rng)
        header = header[:14] + bytearray(mutated) + header[-4:]
        struct.pack_into("<I", header, 10, len(header))
        return repair(bytes(header) + payload)
    inflated = zlib.decompress(payload)
    inflated = mutate_bytes(inflated, rng)
    return repair(bytes(header) + zlib.compress(inflated, rng.choice([1, 6, 9])))


# MARK: - Command line

def as_json(h, changes):
    def value(v):
        if isinstance(v, tuple):
            return v[1] if v[0] == "int" or math.isfinite(v[1]) else repr(v[1])
        return v
    return {
        "formatVersion": h["formatVersion"], "schemaVersion": h["schemaVersion"], "source": uuid_text(h["source"]),
        "account": h["account"], "writtenAt": h["writtenAt"], "changeCount": h["changeCount"],
        "payloadBytes": h["payloadLength"], "uncompressedBytes": h["uncompressedLength"], "checksum": h["checksum"],
        "ranges": [{"origin": uuid_text(x["origin"]), "account": x["account"], "scope": SCOPES[x["scope"]],
                    "from": x["from"], "to": x["to"], "toIncarnation": f"{x['toIncarnation']:016x}"} for x in h["ranges"]],
        "acknowledgements": [{"origin": uuid_text(a["origin"]), "account": a["account"], "scope": SCOPES[a["scope"]],
                              "seq": a["seq"], "incarnation": f"{a['incarnation']:016x}"} for a in h["acknowledgements"]],
        "changes": [{"origin": c["originID"], "account": c["account"], "seq": c["seq"], "millis": c["millis"],
                     "counter": c["counter"], "entity": ENTITIES[c["entity"]], "key": c["key"],
                     "field": FIELDS[c["field"]][0], "value": value(c["value"])} for c in changes],
    }


def main(argv):
    if len(argv) >= 2 and argv[1] == "inspect":
        try:
            h, changes = read(open(argv[2], "rb").read())
        except Invalid as error:
            print(f"error: {error}")
            return 1
        print(json.dumps(as_json(h, changes), indent=1, ensure_ascii=False))
        return 0
    if len(argv) >= 2 and argv[1] == "example":
        data, payload = example_bundle()
        print(f"bundle, {len(data)} bytes:\n{hexdump(data)}\n")
        print(f"inflated payload, {len(payload)} bytes:\n{' '.join(f'{b:02x}' for b in payload)}\n")
        block = BlockEncoder()
        keys = KeyTable()
        for c in example_changes():
            block.append(c, 0, keys)
        for name, col in block.columns():
            print(f"  {name:8s} {' '.join(f'{b:02x}' for b in col)}")
        h, changes = read(data)
        print(json.dumps(as_json(h, changes), indent=1, ensure_ascii=False))
        return 0
    if len(argv) == 4 and argv[1] == "repair":
        open(argv[3], "wb").write(repair(open(argv[2], "rb").read()))
        return 0
    if len(argv) == 6 and argv[1] == "mutate":
        data = open(argv[2], "rb").read()
        open(argv[3], "wb").write(mutate(data, random.Random(int(argv[4])), argv[5]))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
