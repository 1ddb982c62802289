"""Spot messages that need emergency contacts at once.

Runs before intent matching and errs towards recall: a false alarm costs a
resident a few extra phone numbers; a miss can cost far more. Patterns work
on folded text (lower case, no apostrophes or punctuation).
"""

from __future__ import annotations

import re

_PATTERNS: dict[str, list[str]] = {
    "safety.self-harm": [
        r"\b(i|im|ill|i will|i am)\b.{0,12}\b(wont|will not|not going to) be (around|alive|here)\b",
        r"\b(after|when|once) im gone\b|\bjoin (her|him|them) (soon|now|up there)?\b.{0,40}\b(died|gone|funeral|passed)\b|\b(died|passed|gone)\b.{0,60}\bjoin (her|him|them)\b",
        r"\b(letters? to my|goodbye letters?|affairs in order|given (all )?(my|his|her) (stuff|things|possessions) away|sorting out my will)\b",
        r"\b(how (many|much)|enough) (paracetamol|pills|tablets|insulin)\b|\bnot (to )?wake up\b",
        r"\b(standing|stood|sat|sitting) on (the|a) (bridge|roof|ledge|edge|cliff)\b|\btalk me down\b",
        r"\b(jump|jumping) (off|from|in front of)\b|\bwalk into the (sea|river)\b|\b(a|the) rope\b.{0,40}\b(using|use|hang|garage|tonight)\b",
        r"\b(cant|cannot) go on\b|\bplanning (how|to) (id|i would|to)? ?(do it|end|kill)\b|\bstarted planning how\b",
        r"\b(wants?|wanted|going) to die\b|\b(kill|killing|end|ending) (himself|herself|themselves)\b",
        r"\b(burning|scratching|cutting|hitting) (my|his|her) (arm|arms|skin|legs|wrists?)\b|\bburn(ing)? (myself|my arm)\b",
        r"\b(took|taken|take|did|do) an overdose\b|\boverdos\w*\b",
        r"\b(nobody|no one|noone) would (notice|miss me|care)\b|\bdisappeared? for good\b",
        r"\b(be done with it|end it all|make it stop|want it (all )?to (stop|end))\b",
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
        r"\b(touches|touched|touching|interferes? with)\b.{0,20}\b(me|her|him|them)\b.{0,40}\b(uncle|dad|father|step ?dad|mums (boyfriend|partner)|teacher|coach|brother|cousin|man)\b|\b(uncle|dad|father|step ?dad|mums (boyfriend|partner)|teacher|coach|man)\b.{0,40}\b(touches|touched|touching)\b",
        r"\b(hurt|kill|hit) me if i tell\b|\bim in year [1-9]\d?\b.{0,60}\b(hurt|hit|scared|unsafe|safe)\b",
        r"\b(\d{1,2} year old|teenage|young) (girl|boy|girls|boys|daughter|son|niece|nephew)?\b.{0,60}\b(photos|pics|pictures|nudes|meet (her|him|up)|older (man|men|lads)|vapes|alcohol|gifts|new phones?|cash)\b",
        r"\b(photos|pics|pictures|nudes)\b.{0,40}\b(\d{1,2} year old|daughter|son|niece|child|kid)\b",
        r"\b(marry|married off|forced (to )?marr\w*|marry a man|marry a stranger)\b",
        r"\b(carry|carrying|deliver\w*) (packages|parcels|drugs)\b|\bcounty lines\b|\bgoing missing\b",
        r"\b(beat|beats|beating|hits|hitting|whips?|whipping|belts?|belting)\b (him|her|them) with (a|the|his|her|their) (belt|stick|cable|shoe|slipper|wire)\b",
        r"\bsex offenders?\b|\bpaedo\w*\b|\bpedo\w*\b|\bgroom(ing|ed|s)? (my|her|him|them|a|the|children|kids|girls|boys|young)\b",
        r"\b(shakes|shaking|shook|hits|smacks|beats|beating|belts?|kicks)\b.{0,30}\b(the|her|his|their|my) (baby|toddler|child|kids?|son|daughter|little one|him with|her with)\b",
        r"\b(burn|burns|welts|bruises|marks|cut lip|black eye)\b.{0,60}\b(little one|child|kid|boy|girl|son|daughter|toddler|baby|his back|her back)\b|\b(little one|child|kid|toddler|baby)\b.{0,60}\b(burn shaped|bruises|welts|cut lip|black eye)\b",
        r"\b(baby|toddler|children|kids?|little ones?)\b.{0,80}\b(filthy|stinks|no nappy|not fed|hungry all the time|cries for hours|crying for hours|no adult|no one (in|home|looking))\b",
        r"\b(picking up|picks up|giving)\b.{0,20}\b(teenage|young|school) (girls|boys|kids|children)\b",
        r"\b(1[0-5]) (and|with) (has )?a boyfriend who is (1[89]|[2-9]\d)\b|\bboyfriend who is (1[89]|[2-9]\d)\b",
        r"\b(cant|cannot|can not) go (back|home)\b.{0,40}\b(dad|mum|father|mother|step ?dad|parents)\b|\b(dad|mum|father|mother|step ?dad|parents)\b.{0,60}\b(cant|cannot|can not) go (back|home)\b",
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
        r"\b(son|daughter|nephew|niece|grandson|granddaughter|carer|lodger|family|relative|brother|sister|neighbour|friend|people|he|she|they)\b.{0,20}\b(takes|taking|took|taken|stolen|steals|stealing|keeps|kept|selling|sells)\b.{0,40}\b(my|her|his|their|all (my|her|his)) (pip|pension|benefits|money|bank card|jewellery|medication|pain (medication|relief)|tablets|furniture)\b",
        r"\b(sign|signing|signed) (cheques|over|papers|the house)\b|\bchanged (her|his|their) will\b",
        r"\b(put|added|got) (his|her|their) name on (my|her|his|their) (bank|account|house)\b",
        r"\b(met|meet) (online|on the internet)\b.{0,80}\b(sent|send|sending|money|\d+k|pounds|asking (him|her) for)\b",
        r"\b(made to do|forced (into|to do)) (sex work|sex)\b|\bsex work\b",
        r"\b(learning difficult\w*|learning disabilit\w*|downs syndrome|autis\w*|dementia|alzheimers|parkinsons|schizophrenia|brain injury|disabled|registered blind|frail|motor neurone)\b.{0,120}\b(takes?|taking|took|stealing|pushes|hits|money|benefits|neglect\w*|soiled|bed ?sores|wont let|taken over|take(s)? (his|her) money|make (him|her) do|carer hasnt|not been)\b",
        r"\b(soiled|wet) (sheets|bed|clothes)\b|\bbed ?sores\b",
        r"\b(loans?|credit cards?|debts?|finance) (taken out )?in (his|her|their) name\b",
        r"\b(carer|care worker|support worker|pa|personal assistant)\b.{0,40}\b(hasnt (been|come|turned up)|not been for|pushes|hits|shouts|stealing|steals|taking)\b",
        r"\b(lodger|tenant|friends?|people|men|lads)\b.{0,30}\b(taken over|moved into|moved in)\b.{0,40}\b(her|his) (flat|place|house|home)\b|\btaken over the (place|flat|house)\b",
        r"\b(carer|care home|care worker|nursing home)\b.*\bbruis\w*",
        r"\b(dementia|alzheimers)\b.*\b(shouts? at|locks? (him|her)|hits? (him|her)|slaps?|pushe[sd]|wont let (him|her))\b",
        r"\b(lives alone|living alone|on (his|her) own|elderly|old (lady|man|woman|neighbour|gentleman)|\b[6-9]\d and lives)\b.*\b(not seen|havent seen|no food|not eating|smells?|neglect\w*|never visits|not (being )?looked after|not coping)\b",
        r"\b(carer|care home|care worker|nursing home)\b.*\b(stealing|taking|took|steals|money|purse|wallet|bank card|neglect\w*|abus\w*|hit\w*|wet|left him|left her|not fed|weight)\b",
        r"\b(dementia|learning difficult\w*|learning disabilit\w*|vulnerable (adult|man|woman|neighbour))\b.*\b(taking|take|took|stealing|exploit\w*|abus\w*|money|benefits|moved in|neglect\w*)\b",
        r"\b(cuckoo\w*|financial abuse|elder abuse)\b",
        r"\badult safeguarding\b|\bsafeguarding (concern|referral|alert)\b.{0,40}\b(adult|elderly|vulnerable|older)\b",
    ],
    "safety.domestic-abuse": [
        r"\bbroke my (nose|arm|jaw|ribs?|wrist|fingers?)\b",
        r"\b(womens|women s|mens|domestic abuse) refuge\b|\b(need|find) a refuge\b",
        r"\b(gives|allows|lets) me (£|pounds )?\d+\b.{0,20}\b(a|per) (week|month)\b|\bask (his |her )?permission to (buy|go|see|spend)\b",
        r"\b(he|she|they|partner|husband|wife|boyfriend|girlfriend|ex)( always)? (checks|goes through|reads|looks through) (all )?(my )?(receipts|phone|messages|bank|texts|emails)\b|\breads my (messages|texts|emails)\b",
        r"\bpin(s|ned)? me (against|to|down)\b|\b(strangl|chok)\w* me\b",
        r"\btracker on my (car|phone)\b|\b(turns up|follows me) (wherever|everywhere)\b",
        r"\bfinish me off\b|\bnext time (he|she)(ll| will| is going to)\b",
        r"\bscared to (be at|go) home\b|\bafraid (of him|of her|to go home)\b",
        r"\bwithout (my|the) (ex|husband|wife|partner|boyfriend) (finding out|knowing)\b",
        r"\b(locked me in|taken my (keys|phone|passport|bank card)|took my (keys|phone|passport))\b",
        r"\btake the (kids|children) (abroad|away|to his country|back to his country)\b",
        r"\bis it safe to (talk|type|message)\b",
        r"\b(husband|wife|partner|boyfriend|girlfriend|fiance|fiancee|ex)\b.{0,60}\b(pushed|shoved|slapped|punched|kicked|smashes|strangled|threw|throws|bit)\b|\b(pushed|shoved|slapped|punched|kicked)\b.{0,40}\b(by (my|her|his) )?(husband|wife|partner|boyfriend|girlfriend|fiance|ex)\b",
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
        r"\b(isnt|is not|not|wont|hes not|shes not) (responding|responsive|waking up|moving)\b|\bunresponsive\b",
        r"\bclutching (his|her|their|my) chest\b|\bchest pains?\b.{0,40}\b(arm|sweat\w*|grey|breath\w*)\b",
        r"\b(fallen|fell|gone|went) (through|into) (the )?(ice|river|canal|water|sea|lake|pond)\b",
        r"\b(people|someone|somebody|kids?|children|man|woman)\b.{0,20}\b(still )?(inside|trapped|stuck)\b.{0,40}\b(fire|car|water|river|building|smoke|burning|flood\w*)\b",
        r"\b(car|van|lorry|bus)\b.{0,30}\b(into the (river|canal|water)|hit (a|an|the|some) ?(cyclist|child|kid|pedestrian|man|woman|person|someone))\b",
        r"\b(cable|wire|power line|electric\w*)\b.{0,30}\b(down|sparking|exposed|live)\b|\bsparking\b",
        r"\b(baby|child|toddler|dog)\b.{0,20}\b(locked )?in (a|the) (hot )?car\b",
        r"\b(someone|somebody|intruder|a man|men) (is |are )?(in|inside|breaking into) (my|our|the) (house|flat|home)\b|\bhiding (upstairs|in the|under)\b",
        r"\b(gang|mob|group of (lads|men|youths))\b.{0,40}\b(smashing|attacking|fighting|stabbing|weapons?|knives|knife|bricks?)\b",
        r"\b(thrown|throwing|threw) (a )?(brick|bricks|petrol bomb|firework)s? (through|at)\b",
        r"\b(burning|on fire|alight|ablaze|explosion|exploded|massive bang)\b",
        r"\b(water|flood\w*)\b.{0,40}\b(cant get out|cannot get out|trapped|rising|coming in)\b",
        r"\bgot a (knife|gun|machete|blade) out\b|\b(knife|gun|machete)\b.{0,20}\b(out|pulled|waving)\b",
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
        r"\bput (him|her|you|them) in (hospital|a wheelchair|the ground)\b",
        r"\b(going to|gonna|will|shall) regret (it|this|that)\b|\b(sort|deal with) (him|her|them|you) out\b",
        r"\bwatch (his|her|your|their) back\b|\bknow (his|her|your|their) (routine|address)\b|\b(he|she|they)(ll| will) learn\b",
        r"\b(post|share|put|publish)\b.{0,20}\b(home address|where (he|she|they) lives?)\b|\bgo round and have a word\b",
        r"\bgo back to (her|his|your|their) own country\b|\b(useless|bloody|dirty) (immigrant|foreigner)s?\b",
        r"\bwaste of (oxygen|space|skin)\b",
        r"\bknock (him|her|you|them) (out|down|flat)\b|\b(set|put) the dogs on\b|\bover the balcony\b",
        r"\b(baseball )?bat\b.{0,30}\b(waiting|for them|for him|for her|for you)\b|\bwaiting for (them|him|her|you) with\b",
        r"\b(can of petrol|petrol bomb|burn (it|the place|the building|the office) down)\b",
        r"\b(deserve|deserves) a bullet\b|\bgets? what.?s coming\b|\bsee what happens to\b",
        r"\b(brick|bricks|rock|stone) through (the|your|their) window\b|\bput a brick through\b",
        r"\bgoing to get run over\b|\bill make sure of it\b",
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


_DISTRESS = re.compile(
    r"\b(hurt|harm|hit|hits|hitting|beat|beaten|beating|abus|scared|afraid|frighten|terrif|panic|danger|"
    r"die|dies|died|dying|dead|kill|suicid|threat|steal|stole|stolen|scam|neglect|bruis|unsafe|safe|worried|"
    r"worry|alone|missing|weapon|knife|knives|gun|fire|flame|smoke|blood|bleed|attack|rape|assault|touch|"
    r"groom|exploit|control|forc|trap|starv|violen|punch|kick|slap|push|shov|strangl|chok|stalk|harass|"
    r"bully|bullied|cut|cutting|overdos|pills|tablets|end it|goodbye|cant cope|cope|hopeless|pointless|"
    r"no point|see the point|being here|anymore|any more|ending|end it|end my|give up|giving up|desperate|"
    r"cant take|cant go on|tired of|getting worse|leave (my|him|her|the)|get away|"
    r"concern|upset|depress|lonely|isolat|vulnerab|suspicious|not right|frail|weight|dirty|filthy|stink|"
    r"smell|soiled|sores|marks|fear|wont let|doesnt let|makes (him|her|me|them)|made (him|her|me|them)|"
    r"demand|owes|disappear|secret|dont tell|nobody knows|no one knows|gone quiet|not eating|no food|"
    r"strange man|older (man|men|lads)|photos|meet (her|him|up)|sex|drunk|drugs|dealer|"
    r"breath|collaps|unconscious|respond|ambulance|police|emergency|help me|please help|urgent|"
    r"hospital|injur|wound|burn|drown|flood|gas|crash|fell|fallen|fall|lying|screaming|shouting|crying|cries|"
    r"locked|lock|refuge|escape|leave him|leave her|take the kids|taking (his|her|my|their) money|money|"
    r"pension|benefits|cheques|changed (his|her) will|loan|pip|stab|shoot|smash|brick|petrol|bullet|regret|sort (him|her|you|them) out|"
    r"watch your back|waiting for|know where|idiots|morons|scum|parasites|useless)\w*"
)
"""Words of harm, danger or distress. The matcher's safety fallback (a safety
entry ranked near the top) needs one of these: topic words alone ("carer",
"mum") are not a safeguarding concern."""


def distress(folded: str) -> bool:
    """Whether folded text has any word of harm, danger or distress."""
    return bool(_DISTRESS.search(folded))


_COUNCILLOR_ASKING = re.compile(
    r"\b(im a|i am a|as a|as an|new|fellow) (councillor|cllr|ward member|elected member|council officer)\b"
    r"|\b(councillor|cllr) here\b|\bmy (constituents|residents)\b|\bin my ward\b"
)
"""A councillor or officer describing a threat THEY received and asking what to do:
that is guidance (dos.threats-and-intimidation), not a resident threatening staff."""


def detect(folded: str) -> str | None:
    """The safety intent whose pattern ``folded`` text matches, or None."""
    for intent, pattern in _COMPILED.items():
        if pattern.search(folded):
            if intent == "safety.threat-or-abuse" and _COUNCILLOR_ASKING.search(folded):
                continue
            return intent
    return None


def councillor_asking(folded: str) -> bool:
    """Whether the message is a councillor or officer asking about something done to them."""
    return bool(_COUNCILLOR_ASKING.search(folded))
