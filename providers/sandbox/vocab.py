"""Static vocabularies for the sandbox's synthetic world (data only, no logic).

Everything here is plain tuples so that generation in :mod:`providers.sandbox.world` stays a
sequence of cheap ``random.Random`` draws. Weights are relative (they need not sum to 100).
The query parser in :mod:`providers.sandbox.matching` keeps its own phrase tables; the two
modules share only the canonical strings (titles, seniorities, categories, city names).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "BRAND_ROOTS",
    "BRAND_SUFFIXES",
    "CC_TLDS",
    "CITIES",
    "COUNTRY_LOCALE",
    "INDUSTRIES",
    "INDUSTRY_NOUNS",
    "KEY_ROLES",
    "LEGAL_SUFFIX",
    "NICKNAMES",
    "QUERY_PHRASES",
    "ROLES",
    "SCHOOLS",
    "SKILLS",
    "STAGES",
    "STOPWORDS",
    "SUBSIDIARY_SUFFIXES",
    "TITLE_WORDINGS",
    "TLDS",
    "TRANSLITERATIONS",
    "VERTICALS",
    "VERTICAL_SHARE",
    "City",
    "Industry",
    "Role",
    "Stage",
]


class City(NamedTuple):
    name: str
    state: str | None  # region code for US/CA, else None
    country: str
    iso2: str
    weight: float  # relative share of company HQs
    phone_prefixes: tuple[str, ...]  # E.164 prefix incl. country + area code
    phone_digits: int  # random subscriber digits following the prefix


def _us(name: str, state: str, weight: float, *areas: str) -> City:
    return City(name, state, "United States", "US", weight, tuple("+1" + a for a in areas), 7)


CITIES: tuple[City, ...] = (
    _us("New York", "NY", 14.5, "212", "646", "917", "332"),
    _us("San Francisco", "CA", 9.0, "415", "628"),
    _us("Austin", "TX", 4.0, "512", "737"),
    _us("Boston", "MA", 4.5, "617", "857"),
    _us("Seattle", "WA", 4.0, "206"),
    _us("Chicago", "IL", 4.0, "312", "773"),
    _us("Los Angeles", "CA", 4.5, "213", "310", "323"),
    _us("Denver", "CO", 2.5, "303", "720"),
    _us("Palo Alto", "CA", 1.0, "650"),
    _us("San Jose", "CA", 1.0, "408"),
    _us("Mountain View", "CA", 0.7, "650"),
    _us("Oakland", "CA", 0.5, "510"),
    _us("Miami", "FL", 2.0, "305", "786"),
    _us("Atlanta", "GA", 1.5, "404", "470"),
    _us("Washington", "DC", 1.2, "202"),
    _us("Philadelphia", "PA", 1.0, "215", "267"),
    _us("Salt Lake City", "UT", 0.8, "801"),
    _us("Raleigh", "NC", 0.6, "919"),
    _us("Minneapolis", "MN", 0.6, "612"),
    _us("Pittsburgh", "PA", 0.5, "412"),
    _us("Nashville", "TN", 0.5, "615"),
    _us("Dallas", "TX", 1.0, "214", "469"),
    _us("Houston", "TX", 0.8, "713", "832"),
    _us("San Diego", "CA", 0.8, "619", "858"),
    _us("Portland", "OR", 0.6, "503"),
    City("Toronto", "ON", "Canada", "CA", 2.5, ("+1416", "+1647"), 7),
    City("Vancouver", "BC", "Canada", "CA", 1.2, ("+1604",), 7),
    City("Montreal", "QC", "Canada", "CA", 0.8, ("+1514",), 7),
    City("London", None, "United Kingdom", "GB", 5.0, ("+4420",), 8),
    City("Manchester", None, "United Kingdom", "GB", 0.6, ("+44161",), 7),
    City("Edinburgh", None, "United Kingdom", "GB", 0.4, ("+44131",), 7),
    City("Berlin", None, "Germany", "DE", 2.5, ("+4930",), 8),
    City("Munich", None, "Germany", "DE", 1.2, ("+4989",), 8),
    City("Hamburg", None, "Germany", "DE", 0.6, ("+4940",), 8),
    City("Paris", None, "France", "FR", 2.0, ("+331",), 8),
    City("Amsterdam", None, "Netherlands", "NL", 1.5, ("+3120",), 7),
    City("Dublin", None, "Ireland", "IE", 0.8, ("+3531",), 7),
    City("Stockholm", None, "Sweden", "SE", 0.8, ("+468",), 7),
    City("Barcelona", None, "Spain", "ES", 0.6, ("+3493",), 7),
    City("Zurich", None, "Switzerland", "CH", 0.5, ("+4144",), 7),
    City("Tel Aviv", None, "Israel", "IL", 1.0, ("+9723",), 7),
    City("Singapore", None, "Singapore", "SG", 1.2, ("+656",), 7),
    City("Bangalore", None, "India", "IN", 2.0, ("+9180",), 8),
    City("Mumbai", None, "India", "IN", 0.6, ("+9122",), 8),
    City("Sydney", None, "Australia", "AU", 1.2, ("+612",), 8),
    City("Melbourne", None, "Australia", "AU", 0.6, ("+613",), 8),
)

REGION_NAMES: dict[str, str] = {  # state/province code -> name, as the emulators print it
    "AL": "Alabama", "AZ": "Arizona", "CA": "California", "CO": "Colorado", "CT": "Connecticut",
    "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "IL": "Illinois",
    "MA": "Massachusetts", "MD": "Maryland", "MI": "Michigan", "MN": "Minnesota",
    "NC": "North Carolina", "NJ": "New Jersey", "NY": "New York", "OH": "Ohio", "OR": "Oregon",
    "PA": "Pennsylvania", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VA": "Virginia",
    "WA": "Washington", "ON": "Ontario", "BC": "British Columbia", "QC": "Quebec",
}  # fmt: skip

# Faker locale for people names per country (en_US elsewhere).
COUNTRY_LOCALE: dict[str, str] = {
    "GB": "en_GB", "IE": "en_GB", "DE": "de_DE", "CH": "de_DE", "FR": "fr_FR",
    "NL": "nl_NL", "IN": "en_IN", "SE": "sv_SE", "ES": "es_ES",
}  # fmt: skip

# (tld, weight) per country; anything missing uses .com only. Software adds .io / .ai.
TLDS: dict[str, tuple[tuple[str, float], ...]] = {
    "GB": (("co.uk", 0.6), ("com", 0.4)), "DE": (("de", 0.6), ("com", 0.4)),
    "FR": (("fr", 0.5), ("com", 0.5)), "NL": (("nl", 0.5), ("com", 0.5)),
    "IE": (("ie", 0.4), ("com", 0.6)), "SE": (("se", 0.5), ("com", 0.5)),
    "ES": (("es", 0.5), ("com", 0.5)), "CH": (("ch", 0.6), ("com", 0.4)),
    "CA": (("ca", 0.3), ("com", 0.7)), "AU": (("com.au", 0.5), ("com", 0.5)),
    "IN": (("in", 0.3), ("com", 0.7)),
}  # fmt: skip

LEGAL_SUFFIX: dict[str, str] = {
    "US": "Inc.", "CA": "Inc.", "GB": "Ltd", "IE": "Limited", "DE": "GmbH", "CH": "AG",
    "FR": "SAS", "NL": "B.V.", "SE": "AB", "ES": "S.L.", "IL": "Ltd.", "SG": "Pte. Ltd.",
    "IN": "Pvt. Ltd.", "AU": "Pty Ltd",
}  # fmt: skip


class Stage(NamedTuple):
    name: str
    weight: float
    employees: tuple[int, int]  # inclusive range of headcount
    founded: tuple[int, int]  # inclusive range of founded_year
    people: tuple[int, int]  # how many people the world knows at such a company
    round_usd: tuple[int, int]  # amount range of this stage's round (0 for none)


STAGES: tuple[Stage, ...] = (
    Stage("Bootstrapped", 18, (3, 120), (2005, 2023), (3, 4), (0, 0)),
    Stage("Seed", 22, (5, 35), (2019, 2024), (3, 4), (500_000, 4_000_000)),
    Stage("Series A", 20, (15, 90), (2016, 2023), (4, 7), (5_000_000, 20_000_000)),
    Stage("Series B", 12, (45, 300), (2013, 2021), (8, 11), (15_000_000, 60_000_000)),
    Stage("Series C", 10, (120, 480), (2010, 2019), (9, 13), (30_000_000, 120_000_000)),
    Stage("Series D", 5, (300, 1500), (2008, 2017), (11, 15), (60_000_000, 250_000_000)),
    Stage("Series E", 3, (500, 3000), (2006, 2015), (12, 16), (100_000_000, 400_000_000)),
    Stage("Public", 10, (800, 40000), (1985, 2012), (14, 22), (100_000_000, 800_000_000)),
)


class Industry(NamedTuple):
    name: str
    weight: float
    base: tuple[str, ...]  # categories every company of the industry carries
    saas_share: float  # probability of adding "saas" + "b2b"
    extras: tuple[str, ...]  # one or two drawn per company


INDUSTRIES: tuple[Industry, ...] = (
    Industry("Software", 35, (), 0.9,
             ("devtools", "ai", "analytics", "collaboration", "data infrastructure", "hr tech",
              "sales tech", "martech", "customer support", "api")),
    Industry("Logistics", 9, ("logistics",), 0.15,
             ("freight forwarding", "trucking", "warehousing", "last-mile delivery",
              "supply chain", "marketplace")),
    Industry("Financial Services", 10, ("fintech",), 0.4,
             ("payments", "lending", "insurtech", "wealth management", "banking", "crypto")),
    Industry("Healthcare", 8, ("healthtech",), 0.35,
             ("digital health", "telehealth", "biotech", "medical devices", "ai")),
    Industry("E-commerce", 7, ("e-commerce", "b2c"),
             0.05, ("marketplace", "d2c", "retail", "fashion", "subscription")),
    Industry("Manufacturing", 5, ("manufacturing",), 0.1,
             ("industrial iot", "robotics", "hardware", "3d printing", "supply chain")),
    Industry("Marketing & Advertising", 6, ("martech",), 0.7,
             ("adtech", "marketing analytics", "influencer marketing", "ai", "e-commerce")),
    Industry("Cybersecurity", 6, ("cybersecurity",), 0.9,
             ("identity", "cloud security", "threat intelligence", "ai", "compliance")),
    Industry("Education", 5, ("edtech",), 0.4,
             ("online learning", "k-12", "higher education", "upskilling", "marketplace")),
    Industry("Real Estate", 4, ("proptech", "real estate"), 0.4,
             ("construction tech", "property management", "mortgage", "marketplace")),
    Industry("Human Resources", 3, ("hr tech",), 0.9,
             ("recruiting", "payroll", "benefits", "ai")),
)  # fmt: skip

# Vertical SaaS markets for Software companies: (categories, weight). Freight forwarding is
# deliberately a small slice so that a vertical-SaaS-for-freight query returns dozens of rows.
VERTICALS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("freight forwarding", "logistics"), 9), (("logistics", "trucking"), 8),
    (("construction tech",), 10), (("healthtech",), 12), (("legal tech",), 8),
    (("proptech", "real estate"), 9), (("restaurant tech",), 7), (("insurtech", "fintech"), 8),
    (("fintech", "banking"), 8), (("edtech",), 7), (("automotive",), 5), (("agtech",), 5),
    (("manufacturing",), 4),
)  # fmt: skip
VERTICAL_SHARE = 0.3  # share of Software companies that are vertical SaaS

INDUSTRY_NOUNS: dict[str, tuple[str, ...]] = {
    "Software": ("Labs", "Stack", "Cloud", "Works", "AI", "Systems", "HQ", "Data", "Software"),
    "Logistics": ("Freight", "Logistics", "Cargo", "Fleet", "Haul", "Shipping", "Transport"),
    "Financial Services": ("Pay", "Capital", "Finance", "Ledger", "Bank", "Money", "Credit"),
    "Healthcare": ("Health", "Care", "Medical", "Bio", "Clinic", "Therapeutics"),
    "E-commerce": ("Shop", "Market", "Goods", "Cart", "Supply", "Store"),
    "Manufacturing": ("Industries", "Robotics", "Fabrication", "Manufacturing", "Materials"),
    "Marketing & Advertising": ("Media", "Ads", "Growth", "Signal", "Studio", "Reach"),
    "Cybersecurity": ("Security", "Shield", "Guard", "Sec", "Defense", "Trust"),
    "Education": ("Learn", "Academy", "Education", "Tutor", "Classroom"),
    "Real Estate": ("Homes", "Properties", "Realty", "Estates", "Spaces"),
    "Human Resources": ("People", "Talent", "Hire", "Teams", "Workforce"),
}

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


BRAND_ROOTS: tuple[str, ...] = _words(
    """north bright blue peak harbor nova atlas lumen apex vector cedar pine maple river
    stone iron silver gold copper summit beacon signal pilot compass anchor bridge canyon
    delta echo ember falcon fern flint forge frost glade granite hawk helix horizon indigo
    jade juniper kestrel kite lark linden lotus lynx marble meadow mesa mint monarch moss
    nimbus oak onyx opal orchid otter quartz quill raven reef ridge robin sable sage sequoia
    sierra solar sparrow spruce sterling storm swift tango tidal timber topaz trail tundra
    vale velvet willow wren zephyr zenith arbor birch cobalt coral crest dune fable fjord
    grove haven ivy koala larch lumin mariner nectar oasis orbit pebble prism radiant rally
    ripple saffron scout sentry shore spark tessera thistle tulip umber verde vista wave
    alder aspen basalt bloom brook cairn clover comet drift fathom fir glint gust harvest
    kindle lantern ledger loom mica nook pivot plume polar prairie rune slate sol tern"""
)
BRAND_SUFFIXES: tuple[str, ...] = ("ly", "ify", "io", "ora", "ex", "wise", "hub", "base", "lab")


class Role(NamedTuple):
    title: str
    seniority: str  # Sixtyfour vocabulary
    job_function: str
    weight: float  # fill weight for non-key roles (0 => key role only)


ROLES: tuple[Role, ...] = (
    Role("CEO", "CXO", "Leadership", 0), Role("CTO", "CXO", "Engineering", 0),
    Role("CFO", "CXO", "Finance", 0), Role("COO", "CXO", "Operations", 0),
    Role("CMO", "CXO", "Marketing", 0), Role("Co-Founder", "Owner / Founder", "Leadership", 0),
    Role("Partner", "Partner", "Finance", 0),
    Role("VP of Engineering", "VP", "Engineering", 0), Role("VP of Sales", "VP", "Sales", 0),
    Role("VP of Marketing", "VP", "Marketing", 0), Role("VP of Product", "VP", "Product", 0),
    Role("Director of Engineering", "Director", "Engineering", 0),
    Role("Director of Sales", "Director", "Sales", 0.4),
    Role("Director of Operations", "Director", "Operations", 0.3),
    Role("Head of Engineering", "Head", "Engineering", 0), Role("Head of Growth", "Head", "Marketing", 0),
    Role("Head of Product", "Head", "Product", 0), Role("Head of People", "Head", "Human Resources", 0),
    Role("Engineering Manager", "Manager", "Engineering", 1.0),
    Role("Product Manager", "Manager", "Product", 1.2), Role("Sales Manager", "Manager", "Sales", 0.6),
    Role("Marketing Manager", "Manager", "Marketing", 0.7),
    Role("Customer Success Manager", "Manager", "Customer Success", 0.8),
    Role("Senior Software Engineer", "Senior", "Engineering", 2.5),
    Role("Staff Engineer", "Senior", "Engineering", 0.5),
    Role("Senior Account Executive", "Senior", "Sales", 0.8),
    Role("Senior Data Scientist", "Senior", "Data Science", 0.4),
    Role("Senior Product Designer", "Senior", "Design", 0.4),
    Role("Software Engineer", "Entry", "Engineering", 3.0),
    Role("Account Executive", "Entry", "Sales", 1.5), Role("Data Scientist", "Entry", "Data Science", 0.7),
    Role("Product Designer", "Entry", "Design", 0.7), Role("Recruiter", "Entry", "Human Resources", 0.6),
    Role("Sales Development Representative", "Entry", "Sales", 1.0),
    Role("Marketing Associate", "Entry", "Marketing", 0.6),
    Role("Financial Analyst", "Entry", "Finance", 0.4),
    Role("Operations Associate", "Entry", "Operations", 0.6),
)  # fmt: skip

# Key roles: (title, min_employees, probability). Evaluated in order; "Head of Engineering"
# and "Head of Product" are skipped when the VP exists (see world._key_roles).
KEY_ROLES: tuple[tuple[str, int, float], ...] = (
    ("CEO", 0, 1.0), ("Co-Founder", 0, 0.6), ("CTO", 5, 0.8), ("VP of Engineering", 31, 0.97),
    ("VP of Engineering", 15, 0.25), ("Head of Engineering", 10, 0.5), ("VP of Sales", 30, 0.75),
    ("CFO", 100, 0.7), ("COO", 50, 0.5), ("VP of Marketing", 50, 0.6), ("VP of Product", 50, 0.55),
    ("Head of Product", 15, 0.4), ("Head of Growth", 15, 0.35), ("Director of Engineering", 80, 0.6),
    ("Head of People", 60, 0.4), ("CMO", 200, 0.4),
)  # fmt: skip

SKILLS: dict[str, tuple[str, ...]] = {
    "Engineering": ("Python", "Go", "TypeScript", "Kubernetes", "AWS", "PostgreSQL", "React",
                    "Distributed Systems", "Rust", "Java", "Terraform", "Kafka", "GraphQL"),
    "Data Science": ("Python", "SQL", "Machine Learning", "PyTorch", "Statistics", "dbt",
                     "Spark", "Experimentation"),
    "Sales": ("Enterprise Sales", "SaaS", "Salesforce", "Negotiation", "Pipeline Management",
              "MEDDICC", "Account Management", "Outbound"),
    "Marketing": ("Demand Generation", "SEO", "Content Marketing", "HubSpot", "Brand Strategy",
                  "Product Marketing", "Growth Marketing"),
    "Product": ("Product Management", "Roadmapping", "User Research", "Agile", "Analytics",
                "B2B SaaS", "Product Strategy"),
    "Design": ("Figma", "UX Design", "Prototyping", "Design Systems", "User Research"),
    "Finance": ("Financial Modeling", "FP&A", "Fundraising", "Accounting", "Excel", "M&A"),
    "Operations": ("Operations Management", "Process Improvement", "Supply Chain", "Logistics"),
    "Human Resources": ("Recruiting", "Talent Acquisition", "People Operations", "Greenhouse"),
    "Customer Success": ("Customer Success", "Onboarding", "Account Management", "Gainsight"),
    "Leadership": ("Leadership", "Strategy", "Fundraising", "Go-to-Market", "Team Building"),
}  # fmt: skip

# Schools per country; "*" is the international pool everyone may draw from.
SCHOOLS: dict[str, tuple[str, ...]] = {
    "US": ("Stanford University", "Massachusetts Institute of Technology", "Cornell University",
           "University of California, Berkeley", "Carnegie Mellon University", "Columbia University",
           "New York University", "University of Michigan", "University of Texas at Austin",
           "Georgia Institute of Technology", "University of Washington", "Harvard University",
           "University of Illinois Urbana-Champaign", "Princeton University", "Duke University"),
    "CA": ("University of Toronto", "University of Waterloo", "McGill University",
           "University of British Columbia"),
    "GB": ("University of Oxford", "University of Cambridge", "Imperial College London",
           "University College London", "University of Edinburgh", "University of Manchester"),
    "IE": ("Trinity College Dublin", "University College Dublin"),
    "DE": ("Technical University of Munich", "RWTH Aachen University", "Humboldt University of Berlin",
           "Karlsruhe Institute of Technology"),
    "CH": ("ETH Zurich", "EPFL"), "FR": ("École Polytechnique", "HEC Paris", "Sorbonne University"),
    "NL": ("Delft University of Technology", "University of Amsterdam"),
    "SE": ("KTH Royal Institute of Technology", "Stockholm School of Economics"),
    "ES": ("Universitat Politècnica de Catalunya", "IE University"),
    "IL": ("Technion - Israel Institute of Technology", "Tel Aviv University"),
    "SG": ("National University of Singapore", "Nanyang Technological University"),
    "IN": ("Indian Institute of Technology Bombay", "Indian Institute of Technology Delhi",
           "Indian Institute of Science", "BITS Pilani"),
    "AU": ("University of Sydney", "University of Melbourne", "UNSW Sydney"),
    "*": ("Stanford University", "Massachusetts Institute of Technology", "INSEAD",
          "University of Oxford", "ETH Zurich", "London Business School"),
}  # fmt: skip

# --------------------------------------------------------------------------- query phrases
# QUERY_PHRASES maps a normalised phrase (lower case, hyphens as spaces) to (QuerySpec field,
# canonical values). matching.py also accepts a plural "s"/"es" after any phrase.

_TITLE_SYNONYMS: dict[tuple[str, ...], str] = {
    ("VP of Engineering",): "vp of engineering|vp engineering|vp eng|vp of eng|vpe|engineering vp"
    "|vice president of engineering|vice president engineering",
    ("VP of Sales",): "vp of sales|vp sales|sales vp|vice president of sales",
    ("VP of Marketing",): "vp of marketing|vp marketing|marketing vp|vice president of marketing",
    ("VP of Product",): "vp of product|vp product|product vp|vice president of product",
    ("CEO",): "ceo|chief executive officer|chief executive",
    ("CTO",): "cto|chief technology officer|chief technical officer",
    ("CFO",): "cfo|chief financial officer", ("COO",): "coo|chief operating officer",
    ("CMO",): "cmo|chief marketing officer",
    ("Director of Engineering",): "director of engineering|engineering director",
    ("Director of Sales",): "director of sales|sales director",
    ("Director of Operations",): "director of operations|operations director",
    ("Head of Engineering",): "head of engineering", ("Head of Growth",): "head of growth",
    ("Head of Product",): "head of product", ("Head of People",): "head of people|head of hr",
    ("Engineering Manager",): "engineering manager|eng manager",
    ("Product Manager",): "product manager", ("Sales Manager",): "sales manager",
    ("Marketing Manager",): "marketing manager",
    ("Customer Success Manager",): "customer success manager|csm",
    ("Software Engineer", "Senior Software Engineer", "Staff Engineer"):
        "software engineer|swe|software developer|developer",
    ("Senior Software Engineer",): "senior software engineer|senior engineer",
    ("Staff Engineer",): "staff engineer",
    ("Account Executive", "Senior Account Executive"): "account executive|ae",
    ("Senior Account Executive",): "senior account executive",
    ("Data Scientist", "Senior Data Scientist"): "data scientist",
    ("Senior Data Scientist",): "senior data scientist",
    ("Product Designer", "Senior Product Designer"): "product designer|designer",
    ("Senior Product Designer",): "senior product designer",
    ("Recruiter",): "recruiter|talent acquisition partner",
    ("Sales Development Representative",): "sales development representative|sdr|bdr",
    ("Marketing Associate",): "marketing associate", ("Financial Analyst",): "financial analyst",
    ("Operations Associate",): "operations associate",
}  # fmt: skip

_OTHER_PHRASES: dict[tuple[str, tuple[str, ...]], str] = {
    ("seniorities", ("VP",)): "vp|vice president",
    ("seniorities", ("Director",)): "director", ("seniorities", ("Head",)): "heads",
    ("seniorities", ("CXO",)): "c level|c suite|cxo|executive|exec|chief",
    ("seniorities", ("Owner / Founder",)): "founder|co founder|cofounder|owner",
    ("seniorities", ("Manager",)): "manager", ("seniorities", ("Senior",)): "senior",
    ("seniorities", ("Entry",)): "entry level|junior", ("seniorities", ("Partner",)): "partner",
    ("job_functions", ("Engineering",)): "engineering|engineer|software engineering",
    ("job_functions", ("Sales",)): "sales|seller", ("job_functions", ("Finance",)): "finance",
    ("job_functions", ("Marketing",)): "marketing|marketer",
    ("job_functions", ("Operations",)): "operations|ops",
    ("job_functions", ("Product",)): "product|product management",
    ("job_functions", ("Design",)): "design", ("job_functions", ("Data Science",)): "data science",
    ("job_functions", ("Human Resources",)): "hr|human resources|people ops|people operations",
    ("job_functions", ("Customer Success",)): "customer success",
    ("cities", ("New York",)): "new york|nyc|new york city|manhattan|brooklyn",
    ("cities", ("San Francisco",)): "san francisco|sf|san fran",
    ("cities", ("San Francisco", "Palo Alto", "San Jose", "Mountain View", "Oakland")):
        "bay area|sf bay area|silicon valley",
    ("cities", ("Washington",)): "washington dc|washington d.c.|dc|d.c.|washington",
    ("cities", ("Bangalore",)): "bengaluru", ("cities", ("Munich",)): "münchen|munchen",
    ("cities", ("Zurich",)): "zürich", ("cities", ("Montreal",)): "montréal",
    ("states", ("CA",)): "california", ("states", ("TX",)): "texas",
    ("states", ("MA",)): "massachusetts", ("states", ("WA",)): "washington state",
    ("states", ("IL",)): "illinois", ("states", ("CO",)): "colorado",
    ("states", ("FL",)): "florida", ("states", ("PA",)): "pennsylvania", ("states", ("UT",)): "utah",
    ("states", ("NC",)): "north carolina", ("states", ("MN",)): "minnesota",
    ("states", ("TN",)): "tennessee", ("states", ("OR",)): "oregon", ("states", ("ON",)): "ontario",
    ("states", ("BC",)): "british columbia", ("states", ("QC",)): "quebec",
    ("states", ("NY",)): "new york state", ("states", ("GA",)): "georgia",
    ("countries_iso2", ("US",)): "united states|usa|u.s.|u.s.a.|america|united states of america",
    ("countries_iso2", ("CA",)): "canada",
    ("countries_iso2", ("GB",)): "uk|united kingdom|britain|great britain|england",
    ("countries_iso2", ("DE",)): "germany|deutschland", ("countries_iso2", ("FR",)): "france",
    ("countries_iso2", ("NL",)): "netherlands|the netherlands|holland",
    ("countries_iso2", ("IE",)): "ireland", ("countries_iso2", ("SE",)): "sweden",
    ("countries_iso2", ("ES",)): "spain", ("countries_iso2", ("CH",)): "switzerland",
    ("countries_iso2", ("IL",)): "israel", ("countries_iso2", ("IN",)): "india",
    ("countries_iso2", ("AU",)): "australia",
    ("countries_iso2", ("GB", "DE", "FR", "NL", "IE", "SE", "ES", "CH")): "europe|eu",
    ("countries_iso2", ("US", "CA")): "north america",
    ("countries_iso2", ("SG", "IN", "AU")): "apac", ("countries_iso2", ("DE", "CH")): "dach",
    ("industries", ("Software",)): "software",
    ("industries", ("Financial Services",)): "financial services",
    ("industries", ("Healthcare",)): "healthcare|health care",
    ("industries", ("Marketing & Advertising",)): "marketing & advertising|advertising",
    ("industries", ("Education",)): "education",
    ("categories", ("b2b", "saas")): "b2b saas", ("categories", ("vertical saas",)): "vertical saas",
    ("categories", ("freight forwarding",)): "freight forwarding|freight forwarder|freight",
    ("categories", ("ai",)): "ai|artificial intelligence|machine learning|ml|genai|generative ai",
    ("categories", ("devtools",)): "devtools|developer tools|dev tools|developer tooling",
    ("categories", ("cybersecurity",)): "cybersecurity|cyber security|security|infosec",
    ("categories", ("healthtech",)): "healthtech|health tech",
    ("categories", ("e-commerce",)): "e commerce|ecommerce",
    ("categories", ("martech",)): "martech|marketing tech|marketing technology",
    ("categories", ("hr tech",)): "hr tech|hrtech", ("categories", ("d2c",)): "d2c|dtc",
    ("categories", ("construction tech",)): "construction tech|contech|construction",
    ("categories", ("legal tech",)): "legal tech|legaltech",
    ("categories", ("edtech",)): "edtech|education technology",
    ("categories", ("online learning",)): "online learning|e learning",
    ("categories", ("adtech",)): "adtech|ad tech", ("categories", ("crypto",)): "crypto|web3",
    ("categories", ("telehealth",)): "telehealth|telemedicine",
    ("categories", ("restaurant tech",)): "restaurant tech|restaurant",
    ("categories", ("agtech",)): "agtech|agriculture", ("categories", ("api",)): "api",
    ("categories", ("higher education",)): "higher education|higher ed",
    ("categories", ("last-mile delivery",)): "last mile delivery|last mile",
    ("funding_stages", ("Bootstrapped",)): "bootstrapped|self funded",
    ("funding_stages", ("Seed",)): "seed|pre seed|seed stage|seed funded",
    ("funding_stages", ("Public",)): "public|publicly traded|publicly listed|ipo",
    ("funding_stages", ("Seed", "Series A")): "early stage",
    ("funding_stages", ("Series C", "Series D", "Series E")): "late stage|growth stage",
    ("funding_stages", ("Seed", "Series A", "Series B", "Series C", "Series D", "Series E")):
        "venture backed|vc backed",
    ("size", ("-500",)): "startup|start up", ("size", ("+1000",)): "enterprise|large company|large companies",
    ("size", ("+100", "-2000")): "scaleup|scale up", ("size", ("-50",)): "small company|small companies",
}  # fmt: skip

# Categories recognised by their own name ("fintech" -> "fintech").
_PLAIN_CATEGORIES = [
    *_words(
        "saas b2b b2c fintech payments lending insurtech banking logistics trucking warehousing "
        "marketplace retail fashion subscription robotics hardware manufacturing analytics "
        "collaboration biotech identity compliance proptech mortgage recruiting payroll benefits "
        "automotive upskilling k-12"
    ),
    "supply chain", "wealth management", "data infrastructure", "sales tech", "customer support",
    "digital health", "medical devices", "industrial iot", "3d printing", "marketing analytics",
    "influencer marketing", "cloud security", "threat intelligence", "real estate",
    "property management",
]


def _query_phrases() -> dict[str, tuple[str, tuple[str, ...]]]:
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    entries = [(("titles", titles), alts) for titles, alts in _TITLE_SYNONYMS.items()]
    entries += list(_OTHER_PHRASES.items()) + [(("categories", (c,)), c) for c in _PLAIN_CATEGORIES]
    entries += [(("cities", (c.name,)), c.name.lower()) for c in CITIES]
    entries += [(("funding_stages", (f"Series {x}",)), f"series {x.lower()}") for x in "ABCDE"]
    for (field, values), alternatives in entries:
        for phrase in alternatives.split("|"):
            table.setdefault(phrase.replace("-", " "), (field, values))
            for head, plural in (("vp of ", "vps of "), ("director of ", "directors of "),
                                 ("head of ", "heads of ")):  # fmt: skip
                if phrase.startswith(head):
                    table.setdefault(plural + phrase[len(head):], (field, values))
    return table


QUERY_PHRASES: dict[str, tuple[str, tuple[str, ...]]] = _query_phrases()

STOPWORDS: frozenset[str] = frozenset(
    _words(
        """a an the and or of in at on for to with without by from who whom that which are is be
    were was based located headquartered hq near around across within into via per as like
    such than more less about over under what where when how i we our you your me my us them
    they their those these this there here any all some only just also please find show list
    get give want need looking search companies company firms firm businesses business orgs
    organizations organisations people persons person profiles contacts leads folks team teams
    role roles position positions job jobs working work works currently current serving serve
    serves selling sell sells focused focusing focus building build builds using use uses
    similar other top best leading space sector industry industries market markets vertical
    stage funded funding round backed employee employees staff new"""
    )
)

# --------------------------------------------------------------------------- disagreements
# Tables of :mod:`providers.sandbox.disagreements` (the "hard world"): how real providers write one
# entity differently. Written for the sandbox from common usage, independent of the resolver's own
# nickname table (the ``nicknames`` package), so the world does not grade the resolver on its own list.

NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"), "William": ("Bill", "Will", "Billy"), "Richard": ("Rick", "Dick", "Rich"),
    "James": ("Jim", "Jimmy", "Jamie"), "John": ("Jack", "Johnny"), "Michael": ("Mike", "Mikey"),
    "Joseph": ("Joe", "Joey"), "Thomas": ("Tom", "Tommy"), "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris", "Topher"), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",),
    "Anthony": ("Tony",), "Steven": ("Steve",), "Stephen": ("Steve",), "Andrew": ("Andy", "Drew"),
    "Edward": ("Ed", "Eddie", "Ted"), "Timothy": ("Tim",), "Gregory": ("Greg",), "Jeffrey": ("Jeff",),
    "Benjamin": ("Ben",), "Samuel": ("Sam",), "Nicholas": ("Nick",), "Jonathan": ("Jon",),
    "Johnathan": ("Jon", "John"), "Zachary": ("Zach", "Zack"), "Nathan": ("Nate",), "Joshua": ("Josh",),
    "Peter": ("Pete",), "Philip": ("Phil",), "Ronald": ("Ron", "Ronnie"), "Donald": ("Don",),
    "Kenneth": ("Ken", "Kenny"), "Douglas": ("Doug",), "Patrick": ("Pat",), "Alexander": ("Alex",),
    "Gerald": ("Jerry",), "Lawrence": ("Larry",), "Frederick": ("Fred",), "Raymond": ("Ray",),
    "Katherine": ("Kate", "Kathy", "Katie"), "Catherine": ("Cathy", "Kate"), "Elizabeth": ("Liz", "Beth", "Betty"),
    "Margaret": ("Maggie", "Peggy", "Meg"), "Jennifer": ("Jen", "Jenny"), "Rebecca": ("Becky",),
    "Deborah": ("Debbie", "Deb"), "Debra": ("Debbie", "Deb"), "Patricia": ("Pat", "Patty", "Trish"),
    "Kimberly": ("Kim",), "Christina": ("Chris", "Tina"), "Kristina": ("Kris", "Tina"), "Samantha": ("Sam",),
    "Victoria": ("Vicky", "Tori"), "Susan": ("Sue", "Susie"), "Barbara": ("Barb",), "Stephanie": ("Steph",),
    "Jessica": ("Jess",), "Amanda": ("Mandy",), "Cynthia": ("Cindy",), "Theresa": ("Terry", "Tess"),
    "Teresa": ("Terry", "Tess"), "Alexandra": ("Alex",), "Melissa": ("Missy", "Mel"), "Pamela": ("Pam",),
}  # fmt: skip
TRANSLITERATIONS: dict[str, str] = {  # how an ASCII-only provider writes a letter ("Jürgen" -> "Juergen")
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ø": "oe", "Ø": "Oe",
    "å": "aa", "Å": "Aa", "æ": "ae", "é": "e", "è": "e", "ê": "e", "ë": "e", "á": "a", "à": "a", "í": "i",
    "ó": "o", "ú": "u", "ñ": "n", "ç": "c", "ï": "i", "ô": "o", "î": "i", "û": "u",
}  # fmt: skip
TITLE_WORDINGS: dict[str, tuple[str, ...]] = {  # another provider's wording of a canonical title
    "CEO": ("Chief Executive Officer", "Founder & CEO"), "CTO": ("Chief Technology Officer", "Co-founder & CTO"),
    "CFO": ("Chief Financial Officer",), "COO": ("Chief Operating Officer",), "CMO": ("Chief Marketing Officer",),
    "Co-Founder": ("Founder", "Cofounder"), "Partner": ("General Partner", "Managing Partner"),
    "VP of Engineering": ("Vice President, Engineering", "VP Engineering", "SVP Engineering"),
    "VP of Sales": ("Vice President of Sales", "VP Sales", "SVP, Sales"),
    "VP of Marketing": ("Vice President, Marketing", "VP Marketing"),
    "VP of Product": ("Vice President, Product", "VP Product"),
    "Director of Engineering": ("Engineering Director", "Sr. Director, Engineering"),
    "Director of Sales": ("Sales Director", "Senior Director of Sales"),
    "Director of Operations": ("Operations Director",), "Head of Engineering": ("Engineering Lead", "Head of Eng"),
    "Head of Growth": ("Growth Lead", "Director, Growth"), "Head of Product": ("Product Lead", "Director of Product"),
    "Head of People": ("People Lead", "HR Director"), "Engineering Manager": ("Software Engineering Manager",),
    "Product Manager": ("Senior Product Manager", "PM"), "Sales Manager": ("Regional Sales Manager",),
    "Marketing Manager": ("Sr. Marketing Manager",), "Customer Success Manager": ("CSM", "Customer Success Lead"),
    "Senior Software Engineer": ("Sr. Software Engineer", "Software Engineer III", "Senior SWE"),
    "Staff Engineer": ("Staff Software Engineer",), "Senior Account Executive": ("Sr. Account Executive",),
    "Senior Data Scientist": ("Sr. Data Scientist", "Data Scientist II"),
    "Senior Product Designer": ("Sr. Product Designer",), "Software Engineer": ("Software Developer", "SWE II"),
    "Account Executive": ("AE", "Mid-Market Account Executive"), "Data Scientist": ("Data Scientist I",),
    "Product Designer": ("UX Designer",), "Recruiter": ("Technical Recruiter", "Talent Partner"),
    "Sales Development Representative": ("SDR", "Business Development Representative"),
    "Marketing Associate": ("Marketing Specialist",), "Financial Analyst": ("Finance Analyst",),
    "Operations Associate": ("Operations Specialist",),
}  # fmt: skip
SUBSIDIARY_SUFFIXES: tuple[str, ...] = ("Labs", "Europe", "Health", "Pay", "Cloud", "Digital", "Ventures", "Capital")
CC_TLDS: dict[str, str] = {  # the country-code domain a company also runs, by HQ country (else .co.uk)
    "US": "us", "GB": "co.uk", "DE": "de", "FR": "fr", "NL": "nl", "IE": "ie", "SE": "se", "ES": "es",
    "CH": "ch", "CA": "ca", "AU": "com.au", "IN": "in", "SG": "sg", "IL": "co.il", "JP": "jp", "BR": "com.br",
}  # fmt: skip
