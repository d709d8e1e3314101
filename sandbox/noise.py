"""How channels and people garble identity: e-mail variants, phone formats, name typos, address abbreviations.

Every function takes the caller's ``random.Random`` so the whole business stays reproducible. The
truth is always recoverable by a careful pipeline: a national phone format is only shown when the
ship-to country is the phone's country, and an international format written with a dialling prefix
instead of ``+`` uses the prefix of the store's country (``001 415 ...`` in a German shop, ``011 49 ...``
in a US one); so parse with the ship-to country as the default region and, if that gives no valid
number, with the store's country. Every e-mail string an order shows (except Amazon relay addresses)
is listed in ``Person.emails``. A rendered name may use a nickname of the first name (Bill for William,
Sepp for Josef): the truth keeps the given name.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from sandbox.model import Address

# Letters that NFKD does not decompose, or that Germans spell out (Müller -> Mueller).
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ł": "l",
                       "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ı": "i", "đ": "d", "Đ": "D", "œ": "oe"})

# Misspelt provider domains seen in real sign-up data (what "did you mean gmail.com?" widgets catch).
_DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmail.con", "gamil.com", "gmai.com"), "googlemail.com": ("googlemial.com",),
    "yahoo.com": ("yaho.com", "yahooo.com"), "hotmail.com": ("hotmial.com", "hotmail.co"),
    "outlook.com": ("outlok.com",), "icloud.com": ("iclod.com", "icloud.co"), "web.de": ("wbe.de",),
    "gmx.de": ("gmx.der", "gmx.dee"), "hotmail.co.uk": ("hotmail.co.k", "hotmial.co.uk"),
}
# Providers that ignore dots in the local part (so j.smith and jsmith are one inbox).
_DOTLESS = frozenset({"gmail.com", "googlemail.com"})
# International call prefixes (ITU-T E.164 Annex); "00" everywhere else.
_IDD = {"US": "011 ", "CA": "011 ", "AU": "0011 ", "JP": "010 "}
_PLUS_TAGS = ("shop", "orders", "amazon", "online", "promo")

NICKNAME_RATE = 0.05  # share of renderings of a first name that has nicknames which use one


def _names(table: str) -> dict[str, tuple[str, ...]]:
    """``"William: Bill Will; Robert: Bob"`` -> {"William": ("Bill", "Will"), "Robert": ("Bob",)}."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in table.split(";"):
        given, _, nicks = entry.partition(":")
        for name in given.split("/"):
            out[name.strip()] = tuple(nicks.split())
    return out


# The sandbox's own nickname tables (the product resolves nicknames with a separate library, so the
# generator cannot hide its mistakes by sharing a table with dedupe/).
_EN_NICKNAMES = _names("""
    William: Bill Will Billy Liam; Robert: Bob Rob Bobby; Elizabeth: Liz Beth Betty Lizzie;
    Katherine/Catherine/Kathryn: Kate Katie Cathy Kathy; Michael: Mike Mikey; James: Jim Jimmy Jamie;
    Richard: Rick Rich Dick; Thomas: Tom Tommy; Joseph: Joe Joey; Christopher: Chris Kit; Daniel: Dan Danny;
    Matthew/Mathew: Matt; Jennifer: Jen Jenny; Margaret: Maggie Peggy Meg; Alexander: Alex Xander;
    Anthony/Antony: Tony; Nicholas: Nick Nicky; Patricia: Pat Trish Patty; Susan: Sue Susie; Edward: Ed Ted Eddie;
    Benjamin: Ben Benny; Samuel: Sam Sammy; Jonathan/Johnathan: Jon Johnny; Andrew: Andy Drew;
    Steven/Stephen: Steve; Timothy: Tim Timmy; John: Jack Johnny; David: Dave Davey; Charles: Charlie Chuck;
    Barbara: Barb Babs; Jessica: Jess Jessie; Rebecca: Becky Becca; Deborah/Debra: Deb Debbie;
    Kimberly/Kimberley: Kim; Christine/Christina: Chris Tina; Jacqueline: Jackie; Victoria: Vicky Tori;
    Gregory: Greg; Jeffrey/Jeffery: Jeff; Kenneth: Ken Kenny; Ronald: Ron Ronnie; Donald: Don Donnie;
    Douglas: Doug; Raymond: Ray; Lawrence: Larry; Gerald: Jerry Gerry; Frederick: Fred Freddie; Albert: Al Bert;
    Peter: Pete; Zachary: Zach Zack; Joshua: Josh; Nathan/Nathaniel: Nate; Jacob: Jake; Dorothy: Dot Dottie;
    Theodore: Ted Teddy Theo; Abigail: Abby Abbie; Samantha: Sam Sammy; Alexandra: Alex Lexi Sasha;
    Stephanie: Steph Stephie; Melissa: Mel Missy; Cynthia: Cindy; Pamela: Pam; Sandra: Sandy; Kathleen: Kathy Kath;
    Caroline: Carrie Caro; Allison/Alison: Ally Ali; Vincent: Vince Vinny; Leonard: Len Lenny Leo;
    Philip/Phillip: Phil; Russell: Russ; Eugene: Gene; Harold: Harry Hal; Henry: Hank Harry; Walter: Walt Wally;
    Arthur: Art Artie; Francis: Frank Fran; Frances: Fran Frankie; Nicole: Nikki; Natalie: Nat Talia;
    Madison: Maddie; Madeline: Maddie; Olivia: Liv Livvy; Amanda: Mandy; Gabriel: Gabe; Gabrielle/Gabriela: Gabby;
    Jeremy: Jerry; Kristopher: Kris; Kristina/Kristine: Kris Tina; Terence: Terry; Geoffrey: Geoff;
    Angela: Angie; Judith: Judy Jude; Valerie: Val; Eleanor: Ellie Nell; Charlotte: Lottie Charlie;
    Emily: Em Emmy; Penelope: Penny; Rosemary: Rosie; Suzanne: Suzy; Teresa/Theresa: Terri Tess;
    Cameron: Cam; Mitchell: Mitch; Randall: Randy; Bradley: Brad; Dominic: Dom; Oliver: Ollie; Harriet: Hattie;
    Mohammed/Mohammad: Mo; Malcolm: Mal; Raphael: Raf""")
_DE_NICKNAMES = _names("""
    Johannes/Johann: Hans Jo; Josef/Joseph: Sepp Seppi Jupp; Friedrich: Fritz Friedel; Katharina/Catharina: Kathi Katja;
    Wolfgang: Wolf Wolfi; Alexander: Alex; Christian: Chris; Elisabeth/Elisabet: Lisa Liesel Elli;
    Margarete/Margarethe: Grete Gretl; Maximilian: Max Maxi; Franziska: Franzi; Stefanie/Stephanie: Steffi;
    Joachim: Achim Jochen; Matthias: Matze Hias; Michael: Michi Micha; Thomas: Tom Thomy; Andreas: Andi Andy;
    Alexandra: Alex Sandra; Christina/Christine/Christiane: Tina Chrissi; Susanne: Susi Sanne; Sebastian: Basti;
    Tobias: Tobi; Dominik: Domi; Ulrich: Uli; Bernhard: Bernd; Heinrich: Heinz Heini; Barbara: Babsi Bärbel;
    Gabriele: Gabi Gaby; Manuela: Manu; Daniela: Dani; Johanna: Hanna Jo; Wilhelm: Willi Wim; Florian: Flo;
    Benedikt: Bene; Valentin: Valle; Nikolaus: Klaus Niko; Leonhard: Leo; Cornelia: Conny; Theresa/Therese: Resi;
    Walburga: Walli; Ludwig: Lutz Lu; Eberhard: Ebi; Konstantin: Konsti; Patrick: Paddy; Rudolf: Rudi;
    Hubertus/Hubert: Hubsi; Ignaz: Naz; Gertrud/Gertraud: Trude; Hildegard: Hilde; Kunigunde: Kuni;
    Dorothea/Dorothee: Doro Thea; Henriette: Jette; Caroline/Karoline: Caro Lina; Juliane/Juliana: Jule""")
_OTHER_NICKNAMES = _names("""
    José: Pepe Chepe; Francisco: Paco Pancho Kiko; Guadalupe: Lupe Lupita; Jesús: Chuy Chucho; Alejandro: Alex Ale;
    Alejandra: Ale Alex; Roberto: Beto; Alberto: Beto; Guillermo: Memo; Eduardo/José Eduardo: Lalo; Ignacio: Nacho;
    Enrique: Quique; Concepción: Conchita; Dolores: Lola; Rosario: Charo; Manuel: Manolo Manu; Margarita: Rita;
    Katarzyna: Kasia; Małgorzata: Gosia; Krzysztof: Krzysiek; Wojciech: Wojtek; Aleksandra: Ola; Aleksander: Olek;
    Bartłomiej: Bartek; Agnieszka: Aga; Elżbieta: Ela; Józef: Józek; Tomasz: Tomek; Michał: Michałek;
    Grzegorz: Grzesiek; Stanisław: Staszek; Mateusz: Mati; Łukasz: Łuki; Jakub: Kuba; Jan: Janek;
    Guillaume: Guy; Frédéric: Fred; Stéphane: Steph; Nathalie: Nat;
    Véronique: Véro; Dominique: Dom; Christophe: Chris; Emmanuel: Manu; Emmanuelle: Manue; Catherine: Cathy;
    Élisabeth: Babette Lisette; Alexandre: Alex; Mathieu: Math; Benoît: Ben; Sébastien: Seb; Isabelle: Isa;
    Mehmet: Memo; Mustafa: Musti""")
_NICKNAMES_BY_COUNTRY = {
    "DE": {**_EN_NICKNAMES, **_OTHER_NICKNAMES, **_DE_NICKNAMES},
    "AT": {**_EN_NICKNAMES, **_OTHER_NICKNAMES, **_DE_NICKNAMES},
    "CH": {**_EN_NICKNAMES, **_OTHER_NICKNAMES, **_DE_NICKNAMES},
}
_NICKNAMES = {**_DE_NICKNAMES, **_OTHER_NICKNAMES, **_EN_NICKNAMES}


def nfc(text: str) -> str:
    """``text`` in Unicode NFC, the form the truth keeps every name and address in."""
    return unicodedata.normalize("NFC", text)


@lru_cache(maxsize=65536)
def ascii_fold(text: str) -> str:
    """Transliterate to ASCII the way people type on a US keyboard (Jürgen -> Juergen, José -> Jose)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ord(ch) < 128)


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip in ``word``: two letters swapped, one dropped or one doubled (never a no-op)."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 3:
        return word + word[-1:]
    kind = rng.randrange(3)
    i = rng.choice(letters[1:-1])  # keep the first letter: people rarely slip on it
    if kind == 0 and word[i] != word[i + 1] and word[i + 1].isalpha():
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def local_part(rng: random.Random, first: str, last: str) -> str:
    """A typical mailbox name for a person (ASCII, lower case)."""
    f, la = ascii_fold(first).lower().replace(" ", ""), ascii_fold(last).lower().replace(" ", "")
    f, la = f.replace("'", "") or "x", la.replace("'", "") or "x"
    pattern = rng.randrange(8)
    if pattern < 3:
        return f"{f}.{la}"
    if pattern == 3:
        return f"{f}{la}"
    if pattern == 4:
        return f"{f[0]}{la}"
    if pattern == 5:
        return f"{f}_{la}"
    if pattern == 6:
        return f"{f}.{la}{rng.randrange(60, 100)}"
    return f"{la}.{f}"


def work_email(rng: random.Random, first: str, last: str, company: str, tld: str) -> str:
    """An employer mailbox (``j.smith@acme-corp.com``): a second identity no rule can link by e-mail."""
    f = ascii_fold(first).lower().replace(" ", "").replace("'", "") or "x"
    la = ascii_fold(last).lower().replace(" ", "").replace("'", "") or "x"
    local = rng.choice((f"{f}.{la}", f"{f[0]}.{la}", f"{f[0]}{la}", f))
    return f"{local}@{company}.{tld}"


def email_variants(rng: random.Random, local: str, domain: str, work: str | None) -> list[tuple[str, str]]:
    """(kind, address) variants a person also uses besides ``local@domain``: work, typo, alias, upper.

    Kinds: ``work`` (another mailbox), ``typo`` (misspelt local part or provider), ``alias``
    (plus-address or, on Gmail, moved dots) and ``upper`` (same mailbox, typed with capitals).
    """
    out: list[tuple[str, str]] = []
    if work is not None:
        out.append(("work", work))
    if rng.random() < 0.12:
        if domain in _DOMAIN_TYPOS and rng.random() < 0.6:
            out.append(("typo", f"{local}@{rng.choice(_DOMAIN_TYPOS[domain])}"))
        else:
            out.append(("typo", f"{typo(rng, local)}@{domain}"))
    if rng.random() < 0.15:
        if domain in _DOTLESS and "." in local and rng.random() < 0.5:
            out.append(("alias", f"{local.replace('.', '')}@{domain}"))
        else:
            out.append(("alias", f"{local}+{rng.choice(_PLUS_TAGS)}@{domain}"))
    if rng.random() < 0.10:
        shouted = f"{local}@{domain}".upper() if rng.random() < 0.3 else ".".join(
            part[:1].upper() + part[1:] for part in local.split(".")) + "@" + domain.capitalize()
        out.append(("upper", shouted))
    return out


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number in parts: country calling code, area/mobile prefix, subscriber digits."""

    cc: str
    area: str
    subscriber: str

    @property
    def e164(self) -> str:
        """The number in E.164, the form the truth keeps."""
        return f"+{self.cc}{self.area}{self.subscriber}"


def format_phone(rng: random.Random, phone: Phone, store_country: str, local: bool) -> str:
    """``phone`` as someone typed it into a checkout in ``store_country``.

    ``local`` says whether a national format (no country code) is allowed: only when the ship-to
    country is the phone's own, so the pipeline can parse it with the ship-to country as region.
    """
    a, s = phone.area, phone.subscriber
    nanp_store = store_country in ("US", "CA")
    idd = _IDD.get(store_country, "00")  # the store's software writes its own country's exit code
    if phone.cc == "1":
        e, n = s[:3], s[3:]
        intl = [f"+1 {a}-{e}-{n}", f"+1{a}{e}{n}", f"+1 ({a}) {e}-{n}"]
        intl += [f"{idd}1 {a} {e} {n}", f"+1 {a} {e} {n}"] if not nanp_store else [f"1-{a}-{e}-{n}"]
        national = [f"({a}) {e}-{n}", f"{a}{e}{n}", f"{a}-{e}-{n}", f"{a}.{e}.{n}", f"({a}) {e}-{n}"]
    else:
        intl = [f"+{phone.cc} {a} {s}", f"+{phone.cc}{a}{s}", f"+{phone.cc} (0){a} {s}", f"{idd}{phone.cc} {a} {s}"]
        national = [f"0{a} {s}", f"0{a}{s}", f"0{a}/{s}" if phone.cc == "49" else f"0{a} {s[:3]} {s[3:]}"]
    if local and rng.random() < 0.6:
        return rng.choice(national)
    return rng.choice(intl)


def nicknames(first: str, country: str) -> tuple[str, ...]:
    """The nicknames people in ``country`` use for the given name ``first`` (() when it has none)."""
    return _NICKNAMES_BY_COUNTRY.get(country, _NICKNAMES).get(first, ())


def render_name(rng: random.Random, first: str, last: str, country: str) -> str:
    """The person's name as typed into one account: mostly exact, sometimes a nickname, folded, swapped or misspelt."""
    nicks = _NICKNAMES_BY_COUNTRY.get(country, _NICKNAMES).get(first)
    if nicks and rng.random() < NICKNAME_RATE:
        first = nicks[0] if len(nicks) == 1 or rng.random() < 0.5 else rng.choice(nicks)  # one nickname dominates
    roll = rng.random()
    if roll < 0.70:
        return f"{first} {last}"
    if roll < 0.78:
        folded = f"{ascii_fold(first)} {ascii_fold(last)}"
        return folded if folded != f"{first} {last}" else f"{first} {last}"
    if roll < 0.83:
        # Surname first: forms with "Last, First" and German/Asian-style "Last First".
        return f"{last}, {first}" if rng.random() < 0.6 else f"{last} {first}"
    if roll < 0.87:
        return f"{first[0]}. {last}"
    if roll < 0.93:
        return f"{first} {typo(rng, last)}" if rng.random() < 0.7 else f"{typo(rng, first)} {last}"
    if roll < 0.97:
        return f"{first} {last}".lower()
    return f"{first} {last}".upper()


@dataclass(frozen=True, slots=True)
class Home:
    """Where a person lives, with the spellings people use for each part (the first is the truth)."""

    country: str
    line1: tuple[str, ...]  # "12 Maple Avenue", "12 Maple Ave", "12 Maple Ave."
    unit: tuple[str, ...]  # () or ("Apt 4B", "Apartment 4B", "#4B")
    city: tuple[str, ...]
    region: str | None
    postal: tuple[str, ...]

    def truth(self, name: str) -> Address:
        """The canonical address (full street type, canonical postal code)."""
        return Address(name, self.line1[0], self.unit[0] if self.unit else None, self.city[0], self.region,
                       self.postal[0], self.country)


def render_address(rng: random.Random, home: Home, name: str) -> Address:
    """``home`` as typed into one checkout: abbreviations, merged unit lines, folded or shouted spellings."""
    line1 = home.line1[0] if rng.random() < 0.55 else rng.choice(home.line1)
    line2 = None
    if home.unit:
        roll = rng.random()
        unit = home.unit[0] if roll < 0.6 else rng.choice(home.unit)
        if roll < 0.85:
            line2 = unit
        else:
            line1 = f"{line1} {unit}" if home.country != "DE" else f"{line1}, {unit}"
    city = home.city[0] if rng.random() < 0.85 else rng.choice(home.city)
    postal = home.postal[0] if rng.random() < 0.8 else rng.choice(home.postal)
    if rng.random() < 0.04:
        # Some people type everything in capitals; Amazon and label printers keep it that way.
        name, line1, city = name.upper(), line1.upper(), city.upper()
        line2 = line2.upper() if line2 else None
    return Address(name, line1, line2, city, home.region, postal, home.country)
