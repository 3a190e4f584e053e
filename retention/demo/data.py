"""What the demo business is made of: its catalogue, prices, coupons, names and the shape of
its customers' buying (the BG/NBD parameters that `fit_clv` recovers from the orders)."""

from decimal import Decimal

HISTORY_DAYS = 730  # two years of orders, ending at the as-of date
# About four months: more than a quarter and two weeks, so that the courses launched in
# the as-of date's quarter, early access included, only ever sell at new-era prices.
PRICE_UPDATE_DAYS_BEFORE = 122
# BG/NBD parameters, time in weeks: a mean rate of 1.3 purchases a year but a very
# skewed one (shape 0.25), and a mean drop-out probability of 0.24 after each repeat.
# With two years of history about two thirds of customers buy once and one in six
# buys three times or more.
R, ALPHA = 0.25, 10.0
A, B = 0.8, 2.5
# Organisations buy for teams: more often, and they stay longer.
ORGANISATION_RATE_FACTOR, ORGANISATION_DROPOUT_FACTOR = 2.5, 0.7
ACQUISITION_GROWTH = 0.8  # new customers a day grow by e^0.8 = 2.2x over the two years
BATCH = 1000

# category: (code prefix, [(level, title), ...]); levels ascend, and so do launch dates.
CATALOGUE = {
    "business": ("bus", [
        ("beginner", "Business Fundamentals"),
        ("beginner", "Finance for Non-Financial Managers"),
        ("intermediate", "Business Strategy in Practice"),
        ("intermediate", "Negotiation Skills"),
        ("advanced", "Advanced Business Analysis"),
    ]),
    "data": ("dat", [
        ("beginner", "Excel for Data Analysis"),
        ("beginner", "Introduction to SQL"),
        ("intermediate", "Data Visualisation with Power BI"),
        ("intermediate", "Python for Data Analysis"),
        ("intermediate", "Generative AI for Business"),
        ("advanced", "Machine Learning Foundations"),
    ]),
    "project management": ("pm", [
        ("beginner", "Project Management Essentials"),
        ("beginner", "Agile and Scrum Basics"),
        ("intermediate", "Risk and Stakeholder Management"),
        ("advanced", "PMP Exam Preparation"),
        ("advanced", "Programme and Portfolio Management"),
    ]),
    "leadership": ("lead", [
        ("beginner", "First-Time Manager"),
        ("beginner", "Emotional Intelligence at Work"),
        ("intermediate", "Coaching and Feedback"),
        ("intermediate", "Leading Hybrid Teams"),
        ("advanced", "Strategic Leadership"),
    ]),
    "compliance": ("comp", [
        ("beginner", "Data Protection Essentials"),
        ("beginner", "Anti-Money-Laundering Basics"),
        ("beginner", "Workplace Health and Safety"),
        ("intermediate", "Corporate Governance"),
    ]),
    "digital marketing": ("mkt", [
        ("beginner", "Digital Marketing Fundamentals"),
        ("beginner", "Social Media Marketing"),
        ("intermediate", "Search Engine Optimisation"),
        ("advanced", "Marketing Analytics"),
        ("advanced", "Marketing Automation"),
    ]),
}
# Launched in the as-of date's quarter, in this order; the second sold early access.
NEW_COURSES = ("Leading Hybrid Teams", "Generative AI for Business", "Marketing Automation")
EARLY_ACCESS_COURSE = NEW_COURSES[1]
LEVEL_DIGIT = {"beginner": 1, "intermediate": 2, "advanced": 3}
LEVEL_PRICE_TENS = {"beginner": (80, 150), "intermediate": (150, 260), "advanced": (260, 420)}
BUNDLES = [
    ("data-analyst-path", "Data Analyst Path", [
        "Excel for Data Analysis", "Introduction to SQL", "Data Visualisation with Power BI",
        "Python for Data Analysis"]),
    ("project-manager-path", "Project Manager Path", [
        "Project Management Essentials", "Agile and Scrum Basics",
        "Risk and Stakeholder Management", "PMP Exam Preparation"]),
    ("new-manager-kit", "New Manager Kit", [
        "First-Time Manager", "Emotional Intelligence at Work", "Coaching and Feedback",
        "Negotiation Skills", "Finance for Non-Financial Managers", "Business Fundamentals"]),
    ("compliance-essentials", "Compliance Essentials", [
        "Data Protection Essentials", "Anti-Money-Laundering Basics",
        "Workplace Health and Safety"]),
    ("digital-marketing-pro", "Digital Marketing Pro", [
        "Digital Marketing Fundamentals", "Social Media Marketing", "Search Engine Optimisation",
        "Marketing Analytics"]),
]
RECENT_BUNDLE = "digital-marketing-pro"  # launched a few weeks before the as-of date

COUPONS = {"WELCOME10": 10, "LOYAL15": 15, "TEAM20": 20, "BLACKFRIDAY25": 25,
           "EARLYBIRD20": 20, "SCHOLARSHIP": 100}
SECTORS = ["company", "government", "municipality", "institution"]
SECTOR_WEIGHTS = [0.55, 0.15, 0.12, 0.18]
SOURCES = ["organic", "paid_search", "social", "referral", "partner", "event"]
SOURCE_WEIGHTS = {False: [0.34, 0.24, 0.18, 0.12, 0.05, 0.07],  # individuals
                  True: [0.25, 0.15, 0.05, 0.12, 0.25, 0.18]}  # organisations
FIRST_NAMES = (
    "Thandi Sipho Lerato Johan Aisha Pieter Naledi Ravi Fatima Liam Zanele Kagiso Emma Ahmed "
    "Nomsa Daniel Priya Bongani Chloe Tebogo Sarah Musa Anika Themba Grace Yusuf Palesa Ethan "
    "Amahle Ruan Olivia Mandla Keabetswe Hannah Sibusiso Leah Tariq Zinhle Michael Ayanda"
).split()
LAST_NAMES = (
    "Mokoena Naidoo Botha Dlamini Smith Khumalo Pillay Nkosi Jacobs Mahlangu "
    "Williams Patel Ndlovu Fourie Mthembu Adams Sithole Pretorius Moloi Govender Zulu Steyn "
    "Petersen Baloyi Coetzee Mabaso Hendricks Maseko Nel"
).split() + ["van der Merwe"]  # one name of three words
TOWNS = ("Riverside Hillcrest Lakeside Greenfield Stonebridge Fairview Oakdale Brookvale "
         "Kloofnek Sunnyside Westbury Eastgate Highveld Seacliff Marula").split()
COMPANY_WORDS = ("Acacia Baobab Cobalt Delta Ember Fynbos Granite Harbour Indigo Jacaranda "
                 "Kestrel Lumen Meridian Northwind Orion Protea Quartz Summit").split()
COMPANY_KINDS = ["Logistics", "Consulting", "Holdings", "Engineering", "Financial Services",
                 "Retail", "Health", "Software", "Manufacturing", "Media"]
DEPARTMENTS = ["Health", "Education", "Transport", "Home Affairs", "Trade and Industry",
               "Public Works", "Agriculture", "Water and Sanitation", "Labour"]
INSTITUTION_KINDS = ["University", "College", "Technical College", "Hospital",
                     "Research Institute", "School of Nursing"]
TICKET_CATEGORIES = ["pricing", "course_content", "access", "billing", "other"]
TICKET_WEIGHTS = {False: [0.08, 0.32, 0.25, 0.20, 0.15],  # before the price update
                  True: [0.30, 0.24, 0.19, 0.15, 0.12]}  # after it
COMPLAINT_SHARE = {"pricing": 0.35, "course_content": 0.15, "access": 0.10, "billing": 0.20,
                   "other": 0.05}
TICKET_SUBJECTS = {
    "pricing": ["Do you offer group discounts?", "Quote for my team", "Bundle price question"],
    "course_content": ["Error in module 3 quiz", "Video will not play", "Outdated examples"],
    "access": ["Cannot log in", "Course missing from my dashboard", "Certificate not issued"],
    "billing": ["Refund request", "Invoice needs our VAT number", "Charged twice"],
    "other": ["Group booking enquiry", "Change my email address", "Accessibility question"],
}
MEMBERSHIP_PLANS = {  # customer is an organisation -> (plan, monthly price, yearly price)
    False: ("All-access", Decimal("349.00"), Decimal("3490.00")),
    True: ("Team all-access", Decimal("1990.00"), Decimal("19900.00")),
}
