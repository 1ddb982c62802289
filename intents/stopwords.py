"""Words too common to tell one question from another.

Negations and question words that change meaning ("not", "didnt") are
deliberately absent: "that didn't help" must not look like "help".
"""

STOPWORDS = frozenset(
    """
    a about above after again all also am an and any anyone anything are as at be
    been before being below between both but by can could did do does doing done
    each few for from further get gets getting got had has have having he her here
    hers herself him himself his how i if in into is it its itself just let lets
    like me might more most must my myself of off on once only or other our ours
    ourselves out over own please pls plz same shall she should so some something
    such than that thats the their theirs them themselves then there theres these
    they this those through to too under until up us very was we were what whats
    when where which while who whom whose why will with would you your yours
    yourself yourselves im ive id ill youre youve
    still really just ok okay um erm er oh ah hmm want wanted wants need needs
    know tell told help one way bit lot lots thing things go going
    actually actual basically honestly honest even though exactly exact much many
    surely sure literally maybe perhaps probably quite rather anyway anyways
    stuff etc eg ie e g i e also already yet ever every else
    say says said see seen put puts give gives gave take takes took make makes made
    keep keeps kept think thought reckon reckons guess mean means meant
    """.split()
)
"""Stop words; the analyser keeps them when they are all a message has."""

COURTESY = frozenset("hi hiya hey hello morning afternoon evening thanks thank cheers please sorry".split())
"""Greetings and thanks: the whole message when alone ("thanks!"), noise
around a real question ("hi, when is my bin day? thanks")."""
