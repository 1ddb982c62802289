"""The embedded defaults: a fictional council that works out of the box.

Every value is an obvious example (Ofcom's drama numbers, example.gov.uk)
so nothing here can be mistaken for a real council's details. A council
replaces them in the ``[council]`` section of its ``config.toml``.
"""

WEBSITE = "https://www.example.gov.uk"

COUNCIL = {
    "name": "Example Borough Council",
    "phone": "01632 960000",
    "website": WEBSITE,
    "email": "contact@example.gov.uk",
    "address": "Town Hall, High Street, Exampletown EX1 1AA",
    "opening_hours": "Monday to Friday, 9am to 5pm",
    "out_of_hours_phone": "01632 960999",
    "childrens_services_phone": "01632 960111",
    "adult_social_care_phone": "01632 960222",
    "privacy_notice_url": f"{WEBSITE}/privacy",
}

PAGE_NAMES = """
abandoned_vehicle adult_social_care blue_badge bin_day bulky_waste complaints
contact_us council_tax_discounts council_tax_moving council_tax_pay
council_tax_reduction dog_fouling elections find_councillor fly_tipping foi
garden_waste graffiti gritting homelessness housing_benefit housing_register
housing_repairs leisure libraries meetings missed_bin new_bin noise
parking_fines parking_permits pest_control planning_advice planning_search
recycling register_office report_a_problem report_pothole school_admissions
school_closures school_transport street_lighting tip welfare_support whats_on
social_media_guidance accessibility welsh_language privacy housing_options
safeguarding_adults safeguarding_children councillor_code_of_conduct
social_media_policy member_development council_social_media digital_strategy
emergencies officer_guide
air_quality allotments animal_licensing antisocial_behaviour
bereavement_services building_control bus_passes business_rates childcare
citizenship_ceremonies commercial_waste community_grants consultations
contaminated_land council_property council_tax_account empty_homes ev_charging
event_applications flooding food_safety fostering_adoption free_school_meals
highway_licences hmo_licensing jobs land_charges markets
museums_and_arts parks pay_an_invoice premises_licensing private_renting
public_toilets right_to_buy rights_of_way road_safety roadworks room_hire
send_support stray_dogs street_naming taxi_licensing trading_standards
traveller_encampments trees_and_hedges volunteering weddings
""".split()

PAGES = {name: f"{WEBSITE}/{name.replace('_', '-')}" for name in PAGE_NAMES}
"""Default web pages: the example site plus the page's name."""

OFFICERS = [
    {
        "id": "duty",
        "name": "Sam Patel",
        "role": "Customer Services duty officer",
        "topics": ["general", "digital", "information-governance", "democracy", "elections", "registration"],
        "backup": "comms",
    },
    {
        "id": "safeguarding",
        "name": "Alex Morgan",
        "role": "Safeguarding duty officer",
        "topics": ["safeguarding"],
        "hours": "Mon-Sun 00:00-24:00",
        "backup": "duty",
    },
    {
        "id": "waste",
        "name": "Jo Evans",
        "role": "Waste Services officer",
        "topics": ["waste", "environment", "highways", "parking"],
        "backup": "duty",
    },
    {
        "id": "revenues",
        "name": "Chris Lee",
        "role": "Council Tax and Benefits officer",
        "topics": ["council-tax", "benefits"],
        "backup": "duty",
    },
    {
        "id": "housing",
        "name": "Ruth Okafor",
        "role": "Housing Options officer",
        "topics": ["housing", "adult-social-care", "education", "leisure", "planning"],
        "backup": "duty",
    },
    {
        "id": "comms",
        "name": "Priya Shah",
        "role": "Digital Communications lead",
        "topics": ["social-media"],
        "backup": "duty",
    },
]
"""The fictional team of the embedded defaults; every one reads the
command-line inbox (``councilbot escalations``)."""
