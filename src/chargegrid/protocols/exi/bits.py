"""Bit-packed EXI streams (W3C EXI 1.0, 7.1 and 7.1.9): unsigned integers in 7-bit groups,
n-bit unsigned integers written most significant bit first, strings as code points."""

from __future__ import annotations

from chargegrid.protocols.exi.errors import ExiError


def width(count: int) -> int:
    """Bits needed for `count` distinct values: ceil(log2(count)), 0 for one value or none."""
    return (count - 1).bit_length() if count > 1 else 0


class BitWriter:
    __slots__ = ("_acc", "_bits", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._bits = 0

    def bits(self, value: int, n: int) -> None:
        if n == 0:
            return
        self._acc = (self._acc << n) | (value & ((1 << n) - 1))
        self._bits += n
        while self._bits >= 8:
            self._bits -= 8
            self._out.append((self._acc >> self._bits) & 0xFF)
        self._acc &= (1 << self._bits) - 1

    def unsigned(self, value: int) -> None:
        if value < 0:
            raise ExiError(f"{value} is not an unsigned integer")
        while True:
            group = value & 0x7F
            value >>= 7
            self.bits(group | (0x80 if value else 0), 8)
            if not value:
                return

    def integer(self, value: int) -> None:
        if value < 0:
            self.bits(1, 1)
            self.unsigned(-value - 1)
        else:
            self.bits(0, 1)
            self.unsigned(value)

    def raw(self, data: bytes) -> None:
        if not self._bits:
            self._out += data
            return
        total = self._bits + 8 * len(data)
        value = (self._acc << (8 * len(data))) | int.from_bytes(data, "big")
        self._out += (value >> self._bits).to_bytes(total // 8, "big")
        self._acc = value & ((1 << self._bits) - 1)

    def characters(self, text: str) -> None:
        for char in text:
            self.unsigned(ord(char))

    def getvalue(self) -> bytes:
        if self._bits:
            return bytes(self._out) + bytes([(self._acc << (8 - self._bits)) & 0xFF])
        return bytes(self._out)


class BitReader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bits(self, n: int) -> int:
        end = self._pos + n
        if end > len(self._data) * 8:
            raise ExiError("the EXI stream ends too early")
        value = 0
        pos = self._pos
        while pos < end:
            byte = self._data[pos >> 3]
            take = min(8 - (pos & 7), end - pos)
            shift = 8 - (pos & 7) - take
            value = (value << take) | ((byte >> shift) & ((1 << take) - 1))
            pos += take
        self._pos = end
        return value

    def unsigned(self) -> int:
        value = 0
        shift = 0
        while True:
            group = self.bits(8)
            value |= (group & 0x7F) << shift
            if not group & 0x80:
                return value
            shift += 7
            if shift > 7 * 40:
                raise ExiError("an unsigned integer in the EXI stream is too long")

    def integer(self) -> int:
        negative = self.bits(1)
        magnitude = self.unsigned()
        return -magnitude - 1 if negative else magnitude

    def raw(self, length: int) -> bytes:
        if self._pos + 8 * length > len(self._data) * 8:
            raise ExiError("the EXI stream ends too early")
        first, offset = self._pos >> 3, self._pos & 7
        self._pos += 8 * length
        if not offset:
            return bytes(self._data[first : first + length])
        chunk = self._data[first : first + length + 1]
        value = int.from_bytes(chunk, "big") >> (8 - offset)
        return (value & ((1 << (8 * length)) - 1)).to_bytes(length, "big")

    def characters(self, length: int) -> str:
        try:
            return "".join(chr(self.unsigned()) for _ in range(length))
        except (ValueError, OverflowError) as exc:
            raise ExiError("a character in the EXI stream is not a code point") from exc
