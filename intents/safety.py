"""Spot messages that need emergency contacts at once.

Runs before intent matching and errs towards recall: a false alarm costs a
resident a few extra phone numbers; a miss can cost far more. Patterns work
on folded text (lower case, no apostrophes or punctuation).
"""

from __future__ import annotations

import re

_PATTERNS: dict[str, list[str]] = {
    "safety.self-harm": [
        r"\b(tablets|pills|paracetamol)\b.{0,40}\b(saved|stockpil\w*|hoard\w*|collected|taken them all|take them all|all of them)\b",
        r"\b(tonights|tonight is|today is) the night\b",
        r"\b(took|taken|swallowed) (all )?(my|the|a load of|loads of) (pills|tablets)\b",
        r"\b(say|said) (my )?goodbyes?\b.*\b(everyone|family|kids|for good)\b",
        r"\b(hurting|harming) myself\b|\bwant to disappear\b|\bnot want to wake up\b",
        r"\b(kill|hurt|harm|cut|cutting|hang|hanging|overdose|od) (my ?self|myself)\b",
        r"\b(suicid\w*|self ?harm\w*)\b",
        r"\bend (it all|my life|things)\b",
        r"\b(want|wanna|going|plan\w*) to (die|end it)\b",
        r"\b(better off|be better) (without me|if i (was|were)(nt| not) (here|around|alive))\b",
        r"\b(no|dont see the|cant see the|whats the) point (in )?(living|going on|carrying on|anymore|any more)\b",
        r"\b(dont|do not) want to (be here|live|be alive|wake up)\b",
        r"\bstarted cutting\b|\bcutting (myself|my arms?|my legs?)\b",
        r"\btake (all )?my (pills|tablets)\b",
        r"\bcant (go on|cope|do this) any ?more\b",
    ],
    "safety.child-at-risk": [
        r"\bim (1[0-7]|[6-9])\b.*\b(dont|do not|dont) feel safe\b",
        r"\b(dont|do not) feel safe (at home|with my (mum|dad|step ?dad|step ?mum|parents))\b",
        r"\b(child|children|kids?|baby|toddler|lad|girl|boy|little one)\b.{0,80}\b(on (his|her|their) own|alone|no adult|unsupervised|wandering|no one (looking after|watching)|locked out|in (his|her|their) (pyjamas|nappy))\b",
        r"\b(little|small|young) (boy|girl|child|kid|one)\b.{0,60}\b(wandering|crying|alone|on (his|her|their) own|no adult)\b",
        r"\bim (1[0-7]|[6-9])\b.*\b(hit|hits|hurt|hurts|beat|beats|scared|unsafe|not safe|abuse\w*|touch\w*)\b",
        r"\b(child|children|kids?|baby|toddler|lad|girl|boy|son|daughter|little one)\b.*\b(bruis\w*|left (alone|on (their|his|her) own)|starv\w*|neglect\w*|abus\w*|scared to go home|not safe|unsafe|beaten|hit by)\b",
        r"\b(bruis\w*|starv\w*|neglect\w*)\b.*\b(child|children|kids?|baby|toddler|lad|girl|boy|little one)\b",
        r"\b(step ?dad|step ?mum|dad|mum|father|mother|parent)\b (hits|beats|hurts|touches) me\b",
        r"\bchild (abuse|neglect|protection|sexual)\b",
        r"\bgrooming\b",
    ],
    "safety.adult-at-risk": [
        r"\b(carer|care home|care worker|nursing home)\b.*\bbruis\w*",
        r"\b(dementia|alzheimers)\b.*\b(shouts? at|locks? (him|her)|hits? (him|her)|slaps?|pushe[sd]|wont let (him|her))\b",
        r"\b(lives alone|living alone|on (his|her) own|elderly|old (lady|man|woman|neighbour|gentleman)|\b[6-9]\d and lives)\b.*\b(not seen|havent seen|no food|not eating|smells?|neglect\w*|never visits|not (being )?looked after|not coping)\b",
        r"\b(carer|care home|care worker|nursing home)\b.*\b(stealing|taking|took|steals|money|purse|wallet|bank card|neglect\w*|abus\w*|hit\w*|wet|left him|left her|not fed|weight)\b",
        r"\b(dementia|learning difficult\w*|learning disabilit\w*|vulnerable (adult|man|woman|neighbour))\b.*\b(taking|take|took|stealing|exploit\w*|abus\w*|money|benefits|moved in|neglect\w*)\b",
        r"\b(cuckoo\w*|financial abuse|elder abuse)\b",
        r"\badult safeguarding\b",
    ],
    "safety.domestic-abuse": [
        r"\b(hurt|hit|beaten|abused|controlled|threatened|strangled)\b.{0,30}\bby (her|his|their|my) (boyfriend|girlfriend|husband|wife|partner|ex)\b",
        r"\b(cant|cannot) talk\b.{0,40}\b(hes|he is|she is|shes|theyre) (in the next room|listening|here|watching|home)\b",
        r"\b(in the next room|checks my phone|tracks my phone|takes my (money|wages|bank card))\b",
        r"\b(always|keeps) (has|having|making) (an )?excuses? for (the|her|his) (marks|bruises)\b",
        r"\b(husband|wife|partner|boyfriend|girlfriend|ex|fiance|spouse)\b.*\b(hit|hits|hitting|beat|beats|punch\w*|kick\w*|strangl\w*|chok\w*|threaten\w*|control\w*|wont let me|doesnt let me|checks my phone|hurt\w* me|rape\w*|stalk\w*|turning up|keeps turning up)\b",
        r"\bdomestic (abuse|violence)\b",
        r"\b(coercive|controlling) (control|behaviour|relationship)\b",
        r"\bscared (of|to go home|to go back)\b.*\b(husband|wife|partner|boyfriend|girlfriend|him|her)\b",
    ],
    "safety.emergency": [
        r"\b(lying|collapsed|fallen) (at the bottom of|on) (the|her|his|their) (stairs|floor)\b",
        r"\b(fell|fallen|had a fall)\b.{0,40}\b(cant|can not|cannot|unable to) (get up|move)\b",
        r"\b(can barely|cant|cannot) (breathe|talk and breathe)\b|\bhit (his|her|their) head\b.*\b(blood|bleeding|not moving)\b",
        r"\b(theres a|there is a|big|house|flat|kitchen|chip pan|bin store|car|garden) fire\b",
        r"\bfire (in|at) (the|our|my|a|number|no|next door)\b",
        r"\b(on fire|gas leak|smell (of )?gas|flames)\b",
        r"\b(carbon monoxide|co) (alarm )?(is )?(going off|beeping|leak\w*|poisoning)\b",
        r"\bsmoke (is )?(coming|pouring|everywhere|filling)\b",
        r"\b(collapsed|not breathing|unconscious|overdosed|bleeding (heavily|badly|a lot)|wont wake up)\b",
        r"\b(having|is having|think (hes|shes|they are) having) a (heart attack|stroke|seizure|fit)\b",
        r"\b(are|is|someone|somebody|people|lads|men) (breaking in|breaking into|trying to break in)\b",
        r"\b(being burgled|someone has a (knife|gun)|being stabbed|been stabbed|shooting|being attacked)\b",
        r"\b(right now|happening now)\b.*\b(fight\w*|attack\w*|break\w*|robb\w*|stab\w*)\b",
        r"\b(trapped|drowning)\b",
        r"\bcall (an )?ambulance\b|\bemergency services\b",
        r"^(its an |this is an |i have an |theres an |an )?emergency( please)?( help)?( me)?$",
    ],
    "safety.threat-or-abuse": [
        r"\b(im|i am|ill|i will|im gonna|im going to)\b.{0,80}\bsomeone(s| is)?( will| going to| gonna| is going to)? get(ting)? (hurt|killed|smacked|battered)\b",
        r"\bmake (your|their) (life|lives) hell\b",
        r"\b(morons|idiots|scum|parasites|wankers|bastards|clowns)\b.{0,30}\b(the lot of you|you lot|all of you|the lot)\b",
        r"\b(the lot of you|you lot|all of you)\b.{0,30}\b(morons|idiots|scum|parasites|wankers|bastards)\b",
        r"\bknow where (you|he|she|they|that \w+( \w+)?) (lives?|live)\b",
        r"\b(ill|i will|im going to|gonna|im gonna) (kill|hurt|stab|smash|batter|find|get|sort) (you|him|her|them|someone|the lot)\b",
        r"\b(waiting for (him|her|you|them) (after|outside|when))\b",
        r"\b(burn|blow) (the|your) (place|office|civic centre|council|building)\b",
        r"\bwatch your back\b|\byoull regret\b|\bpay (you|him|her|them) a visit\b",
        r"\bf(xxx|uck)\w* (parasites|useless|idiots|morons|scum|wankers)\b",
        r"\b(useless|pathetic|lazy) f(xxx|uck)\w*\b",
    ],
}

_COMPILED = {intent: re.compile("|".join(f"(?:{p})" for p in patterns)) for intent, patterns in _PATTERNS.items()}
"""One alternation per intent: a single scan of the message each."""

SAFETY_INTENTS = tuple(_PATTERNS)
"""Every safety intent id, most specific first."""


def detect(folded: str) -> str | None:
    """The safety intent whose pattern ``folded`` text matches, or None."""
    for intent, pattern in _COMPILED.items():
        if pattern.search(folded):
            return intent
    return None
