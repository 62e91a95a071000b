"""Phone-number helpers (phonenumbers): E.164 parsing, area codes, state/province of a number."""
from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder

_US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
}
_CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Newfoundland": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Québec": "QC", "Saskatchewan": "SK",
    "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
}
_CODES = {**{k: v for k, v in _US_STATES.items()}, **_CA_PROVINCES}
_ALL_CODES = set(_CODES.values())


class InvalidNumber(ValueError):
    pass


def to_e164(raw: str, *, default_country: str = "US") -> str:
    """'+1 512-555-0100' or '(512) 555-0100' → '+15125550100'; InvalidNumber with a readable message otherwise."""
    raw = (raw or "").strip()
    if not raw:
        raise InvalidNumber("Enter a phone number.")
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else (default_country or "US"))
    except phonenumbers.NumberParseException:
        raise InvalidNumber("Enter a phone number in international format, e.g. +15125550100.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"{raw} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parse(e164: str):
    try:
        return phonenumbers.parse(e164 or "", None)
    except phonenumbers.NumberParseException:
        return None


def area_code(e164: str) -> str:
    """NANP area code ('512' for +15125550100); '' for numbers outside +1."""
    parsed = _parse(e164)
    if parsed is None or parsed.country_code != 1:
        return ""
    national = str(parsed.national_number)
    return national[:3] if len(national) == 10 else ""


def country_of(e164: str) -> str:
    parsed = _parse(e164)
    if parsed is None:
        return ""
    return phonenumbers.region_code_for_number(parsed) or ""


def region_of(e164: str) -> str:
    """State or province code of a NANP number ('TX' for +15125550100), '' when unknown."""
    parsed = _parse(e164)
    if parsed is None:
        return ""
    description = geocoder.description_for_number(parsed, "en") or ""
    return region_code(description)


def region_code(text: str) -> str:
    """'Texas' → 'TX', 'New York, NY' → 'NY', 'TX' → 'TX'."""
    text = (text or "").strip()
    if not text:
        return ""
    if text.upper() in _ALL_CODES and len(text) == 2:
        return text.upper()
    if text in _CODES:
        return _CODES[text]
    if "," in text:
        tail = text.rsplit(",", 1)[1].strip()
        return region_code(tail)
    return ""
