"""What generated records are made of: first and last names, cities with their area codes, company
brands and company name templates.

Plain text, one list to a paragraph, read by `words` (and `city_rows`) into lists in the order
written: `generate` draws from them by position, so reordering a list changes every generated file.
"""

from __future__ import annotations


def words(text: str, sep: str = ",") -> list[str]:
    """The `sep`-separated words of `text`, in their order ("Gulf Coast" is one word)."""
    return [word.strip() for word in text.split(sep) if word.strip()]


def city_rows(text: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """'Miami 450 305 786, Tampa 400 813' -> [('Miami', 450, ('305', '786')), ('Tampa', 400, ('813',))]."""
    rows = []
    for entry in words(text):
        parts = entry.split()
        first_number = next(i for i, part in enumerate(parts) if part.isdigit())
        population, *codes = parts[first_number:]
        rows.append((" ".join(parts[:first_number]), int(population), tuple(codes)))
    return rows


# --- people -----------------------------------------------------------------------------------------

FIRST_NAMES = """
    James, Mary, Michael, Patricia, Robert, Jennifer, John, Linda, David, Elizabeth, William, Barbara,
    Richard, Susan, Joseph, Jessica, Thomas, Sarah, Christopher, Karen, Daniel, Lisa, Matthew, Nancy, Anthony,
    Sandra, Mark, Ashley, Steven, Emily, Andrew, Michelle, Joshua, Amanda, Kevin, Melissa, Brian, Stephanie,
    Ryan, Rebecca, Jason, Laura, Carlos, Maria, Luis, Ana, Juan, Carmen, Miguel, Rosa, Jorge, Sofia, Wei, Mei,
    Minh, Linh, Priya, Raj, Aisha, Omar, Hannah, Tyler, Brandon, Megan, Kimberly, Derek, Tiffany, Marcus,
    Jasmine, DeShawn, Ethan, Olivia, Noah, Ava, Liam, Emma, Gabriel, Isabella, Diego, Valentina, Hiroshi,
    Yuki,
"""
# Apostrophes, hyphens and letters beyond ASCII are what break naive SQL quoting, CSV handling and
# email derivation, so they appear often enough to be in every small file.
FIRST_NAMES_SPECIAL = """
    José, Zoë, Søren, Renée, Chloé, François, Björn, Jürgen, Noémie, Íñigo, Thảo, Ramón, Raúl, Sebastián,
    Inés, Andrés, Joël, Mónica, Héctor, Lucía, Łukasz, Siobhán, D'Andre, Mary-Kate, Jean-Luc,
"""
LAST_NAMES = """
    Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore, Jackson,
    Martin, Lee, Thompson, White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King, Wright, Scott,
    Hill, Green, Adams, Baker, Nelson, Carter, Mitchell, Roberts, Turner, Phillips, Campbell, Parker, Evans,
    Edwards, Collins, Stewart, Morris, Rogers, Reed, Cook, Morgan, Bell, Murphy, Rivera, Torres, Flores,
    Ramirez, Nguyen, Kim, Patel, Chen, Wang, Singh, Tran, Cohen, Shapiro, Kowalski, Schmidt, Russo, Romano,
    Sullivan, Kelly, Hughes, Price, Bennett, Wood, Barnes, Ross, Henderson, Coleman, Jenkins, Perry, Powell,
    Long, Patterson, McDonald, Diaz, Castillo, Ortiz, Vargas, Reyes,
"""
LAST_NAMES_SPECIAL = """
    O'Brien, D'Angelo, O'Connor, O'Neill, D'Souza, Dell'Aquila, Nguyễn, Trần, Lê, Phạm, Muñoz, García,
    Hernández, Pérez, Núñez, Gómez, Rodríguez, Martínez, López, González, Sánchez, Peña, Ibáñez, Müller,
    Schröder, Søndergaard, Jørgensen, Łukaszewski, Côté, Lefèvre, Smith-Jones, García-López, De la Cruz,
    Van der Berg, St. Clair,
"""

# --- places -----------------------------------------------------------------------------------------

# City, population in thousands (a weight), the area codes that really serve it.
CITIES = {
    "FL": """
        Jacksonville 950 904, Miami 450 305 786, Tampa 400 813, Orlando 310 407 689, St. Petersburg 260 727,
        Port St. Lucie 230 772, Hialeah 220 305 786, Cape Coral 215 239, Tallahassee 200 850,
        Fort Lauderdale 183 954 754, Pembroke Pines 170 954 754, Hollywood 155 954 754, Gainesville 145 352,
        Miramar 135 954 754, Coral Springs 134 954 754, Palm Bay 125 321, Lakeland 120 863,
        West Palm Beach 120 561, Clearwater 117 727, Pompano Beach 112 954, Boca Raton 100 561,
        Fort Myers 95 239, Daytona Beach 80 386, Sarasota 57 941, Pensacola 54 850,
        """,
    "TX": """
        Houston 2300 713 281 832 346, San Antonio 1450 210 726, Dallas 1300 214 469 972, Austin 960 512 737,
        Fort Worth 930 817 682, El Paso 680 915, Arlington 395 817 682, Corpus Christi 317 361,
        Plano 285 469 972, Lubbock 260 806, Laredo 255 956, Irving 255 972 469, Garland 240 972 469,
        Frisco 200 469 972, Amarillo 200 806, Grand Prairie 196 972, McKinney 195 469 972, Brownsville 186 956,
        Killeen 153 254, Waco 138 254, Midland 132 432, College Station 120 979, The Woodlands 114 281 832,
        Sugar Land 110 281 832,
        """,
    "CA": """
        Los Angeles 3900 213 310 323 818, San Diego 1390 619 858, San Jose 1010 408 669,
        San Francisco 850 415 628, Fresno 540 559, Sacramento 525 916 279, Long Beach 465 562,
        Oakland 435 510 341, Bakersfield 405 661, Anaheim 345 714 657, Stockton 320 209, Riverside 315 951,
        Santa Ana 310 714 657, Irvine 305 949, Chula Vista 275 619, Fremont 230 510, Santa Clarita 228 661,
        San Bernardino 222 909, Modesto 218 209, Huntington Beach 197 714 657, Pasadena 138 626,
        Santa Monica 93 310 424, Santa Barbara 88 805, Palo Alto 68 650,
        """,
}

# --- companies --------------------------------------------------------------------------------------

BRANDS = {
    "FL": """
        Sunshine, Coastal, Gulf Coast, Suncoast, Palm, Atlantic, Emerald Coast, Biscayne, Seminole, Sawgrass,
        Manatee, Tropical,
        """,
    "TX": """
        Lone Star, Alamo, Bluebonnet, Hill Country, Gulf Coast, Longhorn, Panhandle, Pecos, Red River, Brazos,
        Texan, Big Country,
        """,
    "CA": """
        Golden State, Pacific, Bay Area, Redwood, Sierra, Golden Gate, Sunset, Mission, Coastal, Del Mar,
        Sequoia, SoCal,
        """,
}
# What a professional firm calls itself in each state.
LAW_ENTITY = {"FL": "P.A.", "TX": "PLLC", "CA": "APC"}
# Company names by industry, separated by "|" (a name may hold a comma). The fields are those of
# generate's _COMPANY_FIELDS.
COMPANY_TEMPLATES = {
    "real_estate": """
        {brand} Realty Group | {brand} Realty | {brand} Properties | {city} Real Estate | {last} Realty |
        {brand} Homes & Land | {last} & Associates Real Estate | {brand} Realty Partners |
        {city} Premier Properties | {last} Real Estate Group, LLC | {brand} Realty, Inc. |
        """,
    "mortgage": """
        {brand} Mortgage | {brand} Home Loans | {city} Lending Group | {last} Mortgage Company |
        {brand} Funding, LLC | {brand} Home Lending | {brand} Mortgage Brokers |
        """,
    "insurance": """
        {brand} Insurance Agency | {last} Insurance Agency, Inc. | {brand} Insurance Group |
        {city} Insurance Services | {last} & {last2} Insurance |
        """,
    "legal": """
        {last} Law, {entity} | {last} & {last2}, LLP | Law Offices of {first} {last} | {brand} Title & Escrow |
        {city} Real Estate Law Group | {last} Law Group, {entity} |
        """,
    "home_inspection": """
        {brand} Home Inspections | {city} Property Inspections | {last} Inspection Services |
        {brand} Home Inspectors, LLC | Top to Bottom Inspections of {city} | {brand} Property Inspection Co. |
        """,
    "appraisal": """
        {brand} Appraisal Group | {city} Appraisal Services | {last} Appraisals, Inc. |
        {brand} Valuation Services | {last} & Associates Appraisers |
        """,
}
