"""Real cities with their regions, postal code stems and telephone area codes, so addresses and phones agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    """A city: postal codes are ``stem`` plus random digits/letters in the country's pattern."""

    name: str
    region: str | None
    stem: str
    area_codes: tuple[str, ...]
    ascii_name: str | None = None  # how people write it without accents ("Montreal")


def _c(name: str, region: str | None, stem: str, areas: str, ascii_name: str | None = None) -> City:
    return City(name, region, stem, tuple(areas.split()), ascii_name)


CITIES: dict[str, list[City]] = {
    "US": [
        _c("New York", "NY", "100", "212 646 917"), _c("Brooklyn", "NY", "112", "718 347 929"),
        _c("Los Angeles", "CA", "900", "213 323 310"), _c("San Francisco", "CA", "941", "415 628"),
        _c("San Jose", "CA", "951", "408 669"), _c("San Diego", "CA", "921", "619 858"),
        _c("Seattle", "WA", "981", "206"), _c("Portland", "OR", "972", "503 971"),
        _c("Chicago", "IL", "606", "312 773 872"), _c("Houston", "TX", "770", "713 281 832"),
        _c("Austin", "TX", "787", "512 737"), _c("Dallas", "TX", "752", "214 469 972"),
        _c("Miami", "FL", "331", "305 786"), _c("Orlando", "FL", "328", "407 321"),
        _c("Atlanta", "GA", "303", "404 678 470"), _c("Boston", "MA", "021", "617 857"),
        _c("Philadelphia", "PA", "191", "215 267"), _c("Pittsburgh", "PA", "152", "412"),
        _c("Denver", "CO", "802", "303 720"), _c("Cañon City", "CO", "812", "719", "Canon City"),
        _c("Phoenix", "AZ", "850", "602 480"), _c("Las Vegas", "NV", "891", "702 725"),
        _c("Minneapolis", "MN", "554", "612"), _c("Detroit", "MI", "482", "313"),
        _c("Nashville", "TN", "372", "615 629"), _c("Charlotte", "NC", "282", "704 980"),
        _c("Raleigh", "NC", "276", "919 984"), _c("Salt Lake City", "UT", "841", "801 385"),
        _c("Washington", "DC", "200", "202"), _c("Baltimore", "MD", "212", "410 443"),
        _c("Columbus", "OH", "432", "614"), _c("Wilmington", "DE", "198", "302"),
        _c("Manchester", "NH", "031", "603"), _c("Anchorage", "AK", "995", "907"),
        _c("Billings", "MT", "591", "406"), _c("Española", "NM", "875", "505", "Espanola"),
        _c("Honolulu", "HI", "968", "808"),
    ],
    "CA": [
        _c("Toronto", "ON", "M5V M4C M6K M4Y M6H", "416 647 437"), _c("Ottawa", "ON", "K1P K2P K1S", "613 343"),
        _c("Mississauga", "ON", "L5B L4Z", "905 289"), _c("Montréal", "QC", "H2X H3B H2J H4A", "514 438", "Montreal"),
        _c("Québec", "QC", "G1R G1K", "418 581", "Quebec"), _c("Laval", "QC", "H7N H7T", "450 579"),
        _c("Trois-Rivières", "QC", "G9A", "819 873", "Trois-Rivieres"), _c("Vancouver", "BC", "V6B V5K V6K", "604 778"),
        _c("Victoria", "BC", "V8W V8V", "250 778"), _c("Calgary", "AB", "T2P T3A", "403 587"),
        _c("Edmonton", "AB", "T5J T6E", "780 587"), _c("Winnipeg", "MB", "R3C R2M", "204 431"),
        _c("Halifax", "NS", "B3H B3K", "902 782"), _c("Saskatoon", "SK", "S7K", "306 639"),
        _c("St. John's", "NL", "A1C", "709"), _c("Moncton", "NB", "E1C", "506"),
    ],
    "DE": [
        _c("Berlin", None, "10 12 13", "30"), _c("Hamburg", None, "20 22", "40"), _c("München", None, "80 81", "89", "Muenchen"),
        _c("Köln", None, "50 51", "221", "Koeln"), _c("Frankfurt am Main", None, "60", "69", "Frankfurt"),
        _c("Stuttgart", None, "70", "711"), _c("Düsseldorf", None, "40", "211", "Duesseldorf"),
        _c("Leipzig", None, "04", "341"), _c("Dortmund", None, "44", "231"), _c("Essen", None, "45", "201"),
        _c("Bremen", None, "28", "421"), _c("Dresden", None, "01", "351"), _c("Hannover", None, "30", "511"),
        _c("Nürnberg", None, "90", "911", "Nuernberg"), _c("Münster", None, "48", "251", "Muenster"),
        _c("Göttingen", None, "37", "551", "Goettingen"), _c("Würzburg", None, "97", "931", "Wuerzburg"),
        _c("Lübeck", None, "23", "451", "Luebeck"), _c("Saarbrücken", None, "66", "681", "Saarbruecken"),
        _c("Tübingen", None, "72", "7071", "Tuebingen"), _c("Regensburg", None, "93", "941"),
    ],
    "GB": [
        _c("London", None, "EC1A SW11 N1 E14 SE1 W1T NW3", "20"), _c("Manchester", None, "M1 M4 M14 M20", "161"),
        _c("Birmingham", None, "B1 B5 B15 B30", "121"), _c("Leeds", None, "LS1 LS6 LS17", "113"),
        _c("Glasgow", None, "G1 G12 G41", "141"), _c("Edinburgh", None, "EH1 EH3 EH10", "131"),
        _c("Bristol", None, "BS1 BS6 BS8", "117"), _c("Liverpool", None, "L1 L8 L17", "151"),
        _c("Cardiff", None, "CF10 CF11 CF24", "29"), _c("Belfast", None, "BT1 BT7 BT9", "28"),
        _c("Sheffield", None, "S1 S10 S11", "114"), _c("Newcastle upon Tyne", None, "NE1 NE2 NE6", "191"),
        _c("Nottingham", None, "NG1 NG7", "115"), _c("Oxford", None, "OX1 OX2 OX4", "1865"),
        _c("Cambridge", None, "CB1 CB2 CB4", "1223"),
    ],
}

# Mobile prefixes (national significant number without trunk 0) and the subscriber digits after them.
MOBILE: dict[str, list[tuple[str, int]]] = {
    "DE": [("151", 8), ("152", 8), ("157", 8), ("160", 7), ("162", 7), ("170", 7), ("171", 7), ("172", 7),
           ("173", 7), ("175", 7), ("176", 8), ("177", 7), ("178", 7), ("179", 7)],
    "GB": [(f"7{d}", 8) for d in ("4", "5", "7", "8", "9")],
}

# Street names people live on (the Faker pools add surnames-as-streets to these).
STREETS: dict[str, tuple[str, ...]] = {
    "US": ("Main", "Oak", "Maple", "Park", "Washington", "Lake", "Hill", "Pine", "Cedar", "Elm", "Church",
           "Sunset", "Lincoln", "Highland", "Ridge", "River", "Jackson", "Madison", "Franklin", "Spring"),
    "CA": ("King", "Queen", "Yonge", "Bloor", "Dundas", "Maple", "Main", "Church", "Victoria", "Elgin",
           "Jasper", "Portage", "Granville", "Robson", "Spadina", "Bank"),
    "GB": ("High", "Station", "Church", "Victoria", "Green", "Manor", "Park", "Mill", "Queens", "Kings",
           "Albert", "York", "London", "School", "North", "Grange"),
}
# (full, abbreviations as people type them) per country; the truth uses the full form.
STREET_TYPES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "US": [("Street", ("St", "St.")), ("Avenue", ("Ave", "Ave.", "Av")), ("Road", ("Rd", "Rd.")),
           ("Drive", ("Dr", "Dr.")), ("Lane", ("Ln", "Ln.")), ("Boulevard", ("Blvd", "Blvd.")),
           ("Court", ("Ct", "Ct.")), ("Place", ("Pl", "Pl.")), ("Way", ("Wy",))],
    "CA": [("Street", ("St", "St.")), ("Avenue", ("Ave", "Ave.")), ("Road", ("Rd", "Rd.")),
           ("Drive", ("Dr", "Dr.")), ("Crescent", ("Cres", "Cres.")), ("Boulevard", ("Blvd", "Blvd."))],
    "GB": [("Road", ("Rd", "Rd.")), ("Street", ("St", "St.")), ("Lane", ("Ln",)), ("Close", ("Cl",)),
           ("Avenue", ("Ave", "Av.")), ("Crescent", ("Cres",)), ("Gardens", ("Gdns",)), ("Drive", ("Dr",))],
}
# Quebec streets put the type first ("rue Saint-Denis"); abbreviations per Canada Post.
QC_STREETS = ("rue Saint-Denis", "rue Sainte-Catherine", "boulevard René-Lévesque", "avenue du Parc",
              "rue de la Montagne", "chemin de la Côte-des-Neiges", "rue Saint-Jean", "boulevard Laurier",
              "avenue Cartier", "rue Notre-Dame")
QC_ABBREVIATIONS = (("boulevard", "boul."), ("chemin", "ch."), ("avenue", "av."))

# Free e-mail providers by country, most used first (weights are shares of people).
EMAIL_DOMAINS: dict[str, tuple[tuple[str, int], ...]] = {
    "US": (("gmail.com", 50), ("yahoo.com", 15), ("hotmail.com", 8), ("outlook.com", 8), ("icloud.com", 12),
           ("aol.com", 4), ("comcast.net", 3)),
    "CA": (("gmail.com", 50), ("hotmail.com", 15), ("yahoo.ca", 10), ("outlook.com", 8), ("icloud.com", 8),
           ("videotron.ca", 5), ("shaw.ca", 4)),
    "DE": (("gmail.com", 25), ("web.de", 25), ("gmx.de", 25), ("t-online.de", 10), ("googlemail.com", 5),
           ("outlook.de", 5), ("posteo.de", 5)),
    "GB": (("gmail.com", 45), ("hotmail.co.uk", 15), ("yahoo.co.uk", 10), ("outlook.com", 10),
           ("btinternet.com", 10), ("icloud.com", 10)),
}
WORK_TLD = {"US": "com", "CA": "ca", "DE": "de", "GB": "co.uk"}
