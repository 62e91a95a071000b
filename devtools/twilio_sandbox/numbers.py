"""Deterministic phone-number inventory of the Twilio sandbox (US and CA local numbers).

Every (country, area code) has a fixed pool of numbers generated from a seeded
RNG, so the same search always offers the same numbers; `Contains` patterns
that match none of the pool get numbers synthesised around the pattern (also
deterministic). Twilio's magic test numbers are handled by the server.
"""
from __future__ import annotations

import random
import re

# area code -> (locality, region, postal code, rate center, lata, latitude, longitude)
AREA_CODES: dict[str, dict[str, tuple]] = {
    "US": {
        "202": ("Washington", "DC", "20001", "WASHINGTON", "236", "38.9072", "-77.0369"),
        "206": ("Seattle", "WA", "98101", "SEATTLE", "674", "47.6062", "-122.3321"),
        "212": ("New York", "NY", "10001", "NWYRCYZN01", "132", "40.7128", "-74.0060"),
        "213": ("Los Angeles", "CA", "90012", "LSAN DA 01", "730", "34.0522", "-118.2437"),
        "214": ("Dallas", "TX", "75201", "DALLAS", "552", "32.7767", "-96.7970"),
        "303": ("Denver", "CO", "80202", "DENVER", "656", "39.7392", "-104.9903"),
        "305": ("Miami", "FL", "33101", "MIAMI", "460", "25.7617", "-80.1918"),
        "312": ("Chicago", "IL", "60601", "CHICAGO", "358", "41.8781", "-87.6298"),
        "404": ("Atlanta", "GA", "30301", "ATLANTA", "438", "33.7490", "-84.3880"),
        "415": ("San Francisco", "CA", "94105", "SNFC CNTRL", "722", "37.7749", "-122.4194"),
        "503": ("Portland", "OR", "97201", "PORTLAND", "672", "45.5152", "-122.6784"),
        "512": ("Austin", "TX", "78701", "AUSTIN", "558", "30.2672", "-97.7431"),
        "602": ("Phoenix", "AZ", "85001", "PHOENIX", "666", "33.4484", "-112.0740"),
        "615": ("Nashville", "TN", "37201", "NASHVILLE", "468", "36.1627", "-86.7816"),
        "617": ("Boston", "MA", "02108", "BOSTON", "128", "42.3601", "-71.0589"),
        "646": ("New York", "NY", "10001", "NWYRCYZN01", "132", "40.7128", "-74.0060"),
        "702": ("Las Vegas", "NV", "89101", "LAS VEGAS", "721", "36.1699", "-115.1398"),
        "713": ("Houston", "TX", "77002", "HOUSTON", "560", "29.7604", "-95.3698"),
        "718": ("Brooklyn", "NY", "11201", "NWYRCYZN04", "132", "40.6782", "-73.9442"),
        "919": ("Raleigh", "NC", "27601", "RALEIGH", "426", "35.7796", "-78.6382"),
    },
    "CA": {
        "204": ("Winnipeg", "MB", "R3C", "WINNIPEG", "888", "49.8951", "-97.1384"),
        "403": ("Calgary", "AB", "T2P", "CALGARY", "888", "51.0447", "-114.0719"),
        "416": ("Toronto", "ON", "M5H", "TORONTO", "888", "43.6532", "-79.3832"),
        "514": ("Montreal", "QC", "H2Y", "MONTREAL", "888", "45.5017", "-73.5673"),
        "604": ("Vancouver", "BC", "V6B", "VANCOUVER", "888", "49.2827", "-123.1207"),
        "613": ("Ottawa", "ON", "K1P", "OTTAWA", "888", "45.4215", "-75.6972"),
        "647": ("Toronto", "ON", "M5H", "TORONTO", "888", "43.6532", "-79.3832"),
        "780": ("Edmonton", "AB", "T5J", "EDMONTON", "888", "53.5461", "-113.4938"),
        "902": ("Halifax", "NS", "B3H", "HALIFAX", "888", "44.6488", "-63.5752"),
    },
}

SUPPORTED_COUNTRIES = tuple(AREA_CODES)
POOL_SIZE = 60

_KEYPAD = {c: d for d, letters in {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS",
                                    "8": "TUV", "9": "WXYZ"}.items() for c in letters}


def nanp_friendly(e164: str) -> str:
    """+15125550134 -> (512) 555-0134 (Twilio's friendly_name for NANP numbers)."""
    digits = e164.lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return e164


def is_e164(number: str) -> bool:
    return bool(re.fullmatch(r"\+[1-9]\d{6,14}", number or ""))


def is_valid_nanp(number: str) -> bool:
    return bool(re.fullmatch(r"\+1[2-9]\d{2}[2-9]\d{6}", number or ""))


def country_of(number: str) -> str | None:
    """US or CA for a NANP number whose area code the sandbox knows (else None)."""
    if not is_valid_nanp(number):
        return None
    area = number[2:5]
    for country, codes in AREA_CODES.items():
        if area in codes:
            return country
    return None


def contains_regex(pattern: str) -> re.Pattern | None:
    """Twilio's Contains: digits, letters (keypad) and `*` for any one digit, anywhere in the number."""
    pattern = (pattern or "").strip().upper()
    if not pattern:
        return None
    out = []
    for ch in pattern:
        if ch.isdigit():
            out.append(ch)
        elif ch in _KEYPAD:
            out.append(_KEYPAD[ch])
        elif ch in "*_":
            out.append(r"\d")
        elif ch == "+":
            continue
        else:
            return re.compile(r"(?!)")  # matches nothing
    return re.compile("".join(out))


def area_known(country: str, area_code: str) -> bool:
    return area_code in AREA_CODES.get(country, {})


def _subscriber(rng: random.Random) -> str:
    exchange = rng.randint(200, 999)
    while exchange % 100 == 11 or exchange == 555:
        exchange = rng.randint(200, 999)
    return f"{exchange:03d}{rng.randint(0, 9999):04d}"


def pool(country: str, area_code: str) -> list[str]:
    """The fixed list of numbers offered in this area code (empty for area codes the sandbox doesn't know)."""
    if not area_known(country, area_code):
        return []
    rng = random.Random(f"sandbox:{country}:{area_code}")
    seen: list[str] = []
    while len(seen) < POOL_SIZE:
        number = f"+1{area_code}{_subscriber(rng)}"
        if number not in seen:
            seen.append(number)
    return seen


def synthesize(country: str, area_code: str, pattern: str, count: int) -> list[str]:
    """Numbers in the area code that contain `pattern` (deterministic), for Contains searches the pool misses."""
    regex = contains_regex(pattern)
    if regex is None or not area_known(country, area_code):
        return []
    digits = "".join(_KEYPAD.get(c, c) for c in pattern.strip().upper().lstrip("+"))
    rng = random.Random(f"sandbox:{country}:{area_code}:{pattern}")
    found: list[str] = []
    for attempt in range(400):
        full = list(f"1{area_code}{_subscriber(rng)}")
        if len(digits) > 11:
            break
        offset = attempt % (12 - len(digits))  # every placement; invalid ones are skipped below
        for i, ch in enumerate(digits):
            if ch != "*":
                full[offset + i] = ch
        number = "+" + "".join(full)
        if number[2:5] != area_code or not is_valid_nanp(number) or not regex.search(number[1:]):
            continue
        if number not in found:
            found.append(number)
        if len(found) >= count:
            break
    return found


def details(country: str, number: str) -> dict:
    """Locality fields of an available number."""
    area = number[2:5]
    locality, region, postal, rate_center, lata, lat, lon = AREA_CODES.get(country, {}).get(
        area, ("", "", "", "", "", "0.0", "0.0"))
    return {
        "friendly_name": nanp_friendly(number),
        "phone_number": number,
        "lata": lata,
        "locality": locality,
        "rate_center": rate_center,
        "latitude": lat,
        "longitude": lon,
        "region": region,
        "postal_code": postal,
        "iso_country": country,
        "address_requirements": "none",
        "beta": False,
        "capabilities": {"voice": True, "SMS": True, "MMS": True, "fax": False},
    }
