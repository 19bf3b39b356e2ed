"""The built-in dataset: synthetic, SAMSum-like chat dialogues with reference summaries.

Everything here is generated from word lists and templates by a seeded `random.Random`; there are
no files and no network access. It is synthetic data for smoke tests and cheap studies, not a
substitute for a real corpus: scores on it say nothing about scores on SAMSum or CNN/DailyMail.

Each example is a chat in `Name: utterance` lines between 2 or 3 speakers about one situation
(a meeting, an errand, someone running late, a lost item, a group choosing an outing, a cancelled
plan), with a 1-2 sentence reference summary such as "Anna and Tom will see a film at the cinema
on Friday at 7 pm. Tom will bring the tickets." To keep a tiny random-init model from simply
copying, the dialogues

- say each fact in several ways ("7", "seven", "19:00", "7pm"; "tmrw", "tomorrow") while the
  summary uses one canonical form ("7 pm", "tomorrow"),
- change plans mid-dialogue (a counter-proposal accepted or turned down, a later "can we push
  it to ..."): the summary states only the final plan,
- turn first-person commitments ("I'll bring the tickets") into named ones ("Tom will ..."),
- mix in chit-chat, some of it naming other places and times, and
- vary in length (about 40 to 150 words, speaker tags included).

`generate_dialogues(n, seed)` is deterministic: example `i` is drawn from its own generator seeded
with `("greentune-synthetic", seed, i)`, so the same `(n, seed)` gives identical output and a
longer run extends a shorter one. Splits must use different seeds; `trainables.datasets.load_split`
derives them as `split_seed(seed, split)` (train, validation and test never share one).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------------
# Word lists

NAMES = (
    "Anna", "Tom", "Kate", "Leo", "Mia", "Ben", "Eve", "Sam", "Lucy", "Jack",
    "Emma", "Noah", "Zoe", "Adam", "Ella", "Max", "Lily", "Oscar", "Ruby", "Dan",
    "Nina", "Paul", "Iris", "Hugo", "Amy", "Finn", "Sara", "Jake", "Olga", "Marc",
    "Julia", "Ian", "Rosa", "Tim", "Hana", "Luke", "Vera", "Owen", "Alice", "Peter",
)  # fmt: skip

# Activity (infinitive, as in "will <activity>") -> places where it happens. Activities with
# several places let a dialogue move the plan to another place.
ACTIVITIES: dict[str, tuple[str, ...]] = {
    "see a film": ("the cinema", "the open-air cinema"),
    "have dinner": ("Luigi's", "the Thai place", "the sushi bar", "the burger place"),
    "have lunch": ("the food court", "the Thai place", "the canteen", "the bistro"),
    "grab a coffee": ("the café on Main Street", "the coffee shop by the station", "the bakery"),
    "have a drink": ("the pub", "the rooftop bar", "the wine bar"),
    "watch the match": ("the pub", "the stadium", "the sports bar"),
    "go swimming": ("the pool", "the lake", "the beach"),
    "study for the exam": ("the library", "the campus", "the reading room"),
    "work on the project": ("the library", "the office", "the co-working space"),
    "go for a run": ("the park", "the river path"),
    "play tennis": ("the tennis club", "the courts behind the school"),
    "see the new exhibition": ("the museum", "the gallery"),
    "go shopping": ("the mall", "the market", "the outlet centre"),
    "go bowling": ("the bowling alley",),
    "go climbing": ("the climbing wall",),
    "go skating": ("the ice rink",),
    "see a play": ("the theatre",),
    "sing karaoke": ("the karaoke bar",),
    "have a picnic": ("the park", "the lake", "the botanical garden"),
}
ALL_PLACES = tuple(sorted({p for places in ACTIVITIES.values() for p in places}))

# Things someone brings along: (summary form, spoken forms).
OBJECTS = (
    "the tickets", "some snacks", "the charger", "an umbrella", "the board game", "the speaker",
    "the notes", "the camera", "a blanket", "the rackets", "some drinks", "the cake",
    "the projector", "the ball", "sunscreen", "the car",
)  # fmt: skip
# Things someone buys or picks up on an errand: (thing, where).
ERRANDS = (
    ("the parcel", "the post office"), ("some milk", "the supermarket"), ("the keys", "the office"),
    ("the prescription", "the pharmacy"), ("a birthday card", "the bookshop"),
    ("fresh bread", "the bakery"), ("the dry cleaning", "the laundry"), ("flowers", "the market"),
    ("a new charger", "the electronics shop"), ("the printed posters", "the copy shop"),
)  # fmt: skip
LOST_ITEMS = (
    "phone", "keys", "wallet", "scarf", "headphones", "glasses", "jacket", "laptop charger",
    "water bottle", "umbrella", "notebook", "hat",
)  # fmt: skip
PLURAL_ITEMS = frozenset({"keys", "headphones", "glasses"})
LOST_PLACES = (
    "in the car", "at the gym", "at the office", "at the café on Main Street", "at the cinema",
    "on the bus", "in the kitchen", "at the library", "at the pub", "on the train",
)  # fmt: skip
LATE_REASONS = (
    ("stuck in traffic", ("I'm stuck in traffic", "traffic is terrible", "there's a huge jam")),
    ("delayed by the train", ("my train is delayed", "the train is late again")),
    ("held up at work", ("my meeting is running over", "my boss called me in", "work ran late")),
    ("waiting for a plumber", ("the plumber hasn't come yet", "I'm still waiting for the plumber")),
)  # fmt: skip
CANCEL_REASONS = (
    ("is ill", ("I'm sick", "I've got a fever", "I think I caught the flu")),
    ("has to work", ("I have to work late", "I got an extra shift", "my boss needs me tonight")),
    ("has a family visit", ("my parents are visiting", "my sister is coming over")),
    ("has an exam the next day", ("I have an exam the day after", "I need to study, exam tmrw")),
)  # fmt: skip
DAYS = (
    ("tomorrow", ("tomorrow", "tmrw", "tomorrow")),
    ("on Monday", ("Monday", "on Monday", "Mon")),
    ("on Tuesday", ("Tuesday", "on Tuesday")),
    ("on Wednesday", ("Wednesday", "on Wednesday", "Wed")),
    ("on Thursday", ("Thursday", "on Thursday", "Thu")),
    ("on Friday", ("Friday", "on Friday", "Fri", "this Friday")),
    ("on Saturday", ("Saturday", "on Saturday", "Sat", "this Saturday")),
    ("on Sunday", ("Sunday", "on Sunday", "Sun")),
)  # fmt: skip
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
)  # fmt: skip

# Chit-chat: 2-line exchanges (first speaker, second speaker). `{place}`, `{time}` and `{name}`
# are filled with unrelated values, so that not every place or time in a dialogue is the plan.
CHITCHAT = (
    ("How was your weekend?", "Quiet, mostly slept :D"),
    ("Did you see the match yesterday?", "Don't remind me..."),
    ("It's so cold today", "I know, I'm wearing two jumpers"),
    ("btw {name} says hi", "Say hi back!"),
    ("I was at {place} last week, it was packed", "It always is at weekends"),
    ("Have you finished the report?", "Almost, I'll send it tonight"),
    ("lol did you see {name}'s photos from {place}?", "Haha yes, amazing"),
    ("My phone is dying", "Charge it then :P"),
    ("Ugh, Mondays", "Tell me about it"),
    ("Last time we went there at {time} it was empty", "Yeah, it's quieter then"),
    ("Are you still doing yoga?", "Twice a week now!"),
    ("How's your mum?", "Much better, thanks for asking"),
    ("I'm starving", "Same here"),
    ("Did {name} get the job?", "Yes! Starts next month"),
    ("The bus was late again this morning", "Classic"),
    ("Have you seen the new series on Netflix?", "Not yet, no spoilers!"),
    ("Did you call {name} back?", "Not yet, I'll do it later"),
    ("My landlord finally fixed the heating", "About time!"),
    ("{name} is moving to Berlin", "Really? Since when?"),
    ("Can you send me that recipe?", "Sure, remind me tonight"),
    ("I think I'm getting a cold", "Drink some tea with honey"),
    ("Who won yesterday?", "No idea, I fell asleep"),
    ("We went to {place} at {time} on Sunday", "And? Any good?"),
    ("I've started learning Spanish", "¡Muy bien!"),
    ("How's the new flat?", "Small but cosy"),
    ("The printer at work is broken again", "Of course it is"),
    ("Did you get my email?", "Yes, will reply tomorrow"),
    ("My cat knocked over the plant again", "Haha typical"),
)  # fmt: skip
FILLERS = ("ok", "Cool", "haha", ":)", "Great", "Sure", "👍", "Perfect", "lol", "Nice", "Yep")

MIN_WORDS = 40  # lower bound of a dialogue's length, words (speaker tags included)
MAX_WORDS = 150  # upper bound, words


# --------------------------------------------------------------------------------------------
# Small helpers


@dataclass
class _Draft:
    """A dialogue under construction: blocks of (speaker, text) lines, the summary, the facts."""

    blocks: list[list[tuple[str, str]]]
    summary: str
    facts: dict[str, Any]
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Time:
    hour: int  # 1..12
    minute: int  # 0 or 30
    pm: bool

    def summary(self) -> str:
        hm = f"{self.hour}" if self.minute == 0 else f"{self.hour}:{self.minute:02d}"
        return f"{hm} {'pm' if self.pm else 'am'}"

    def spoken(self, rng: random.Random) -> str:
        h24 = self.hour % 12 + (12 if self.pm else 0)
        suffix = "pm" if self.pm else "am"
        if not self.pm:  # mornings are always said unambiguously
            hm = f"{self.hour}" if self.minute == 0 else f"{self.hour}:{self.minute:02d}"
            forms = [f"{hm} am", f"{hm}am", f"{h24:02d}:{self.minute:02d}", f"{hm} in the morning"]
        elif self.minute == 0:  # a bare hour means pm (pm hours here are 1..10)
            forms = [
                f"{self.hour}", f"{self.hour} {suffix}", f"{self.hour}{suffix}",
                NUMBER_WORDS[self.hour], f"{h24}:00", f"{self.hour} o'clock",
            ]  # fmt: skip
        else:
            forms = [f"{self.hour}:30", f"half past {self.hour}", f"{h24}:30", f"{self.hour}.30pm"]
        return rng.choice(forms)


_ANY_HOURS = tuple((h, False) for h in range(8, 12)) + tuple((h, True) for h in range(1, 11))
_EVENING_HOURS = tuple((h, True) for h in range(6, 11))
# Hours (1..12, pm) that suit an activity; the rest use _ANY_HOURS.
TIME_WINDOWS: dict[str, tuple[tuple[int, bool], ...]] = {
    "have dinner": _EVENING_HOURS,
    "have a drink": _EVENING_HOURS,
    "sing karaoke": _EVENING_HOURS,
    "see a play": _EVENING_HOURS,
    "have lunch": ((11, False), (12, True), (1, True), (2, True)),
}


def _pick_time(rng: random.Random, avoid: _Time | None = None, activity: str = "") -> _Time:
    """A time suiting `activity`, different from `avoid`; mostly afternoons and evenings."""
    hours = TIME_WINDOWS.get(activity, _ANY_HOURS)
    while True:
        hour, pm = rng.choice(hours)
        if hours is _ANY_HOURS and not pm and rng.random() < 0.6:
            continue  # fewer mornings
        t = _Time(hour, rng.choice((0, 0, 30)), pm)
        if avoid is None or t.summary() != avoid.summary():
            return t


def _pick_day(rng: random.Random, avoid: str = "") -> tuple[str, str]:
    """Return (summary form, spoken form) of a day."""
    while True:
        summary, spoken = rng.choice(DAYS)
        if summary != avoid:
            return summary, rng.choice(spoken)


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _other_place(rng: random.Random, exclude: set[str]) -> str:
    return rng.choice([p for p in ALL_PLACES if p not in exclude])


# --------------------------------------------------------------------------------------------
# Scenarios: each returns a draft whose summary states the final state of the plan.


def _meet(rng: random.Random, people: list[str]) -> _Draft:
    """Two or three people arrange to meet; the time or place may change on the way."""
    a, b = people[0], people[1]
    activity = rng.choice(sorted(ACTIVITIES))
    place = rng.choice(ACTIVITIES[activity])
    time = _pick_time(rng, activity=activity)
    day, day_spoken = _pick_day(rng)
    blocks: list[list[tuple[str, str]]] = []
    blocks.append([
        (a, rng.choice([
            f"Hey {b}! Are you free {day_spoken}?", f"{b}, what are you up to {day_spoken}?",
            f"Fancy doing something {day_spoken}?", f"Hi! Any plans for {day_spoken}?",
        ])),
        (b, rng.choice(["Not really, why?", "Nothing much. What's up?", "I'm free, why?",
                        "Depends :) what did you have in mind?"])),
    ])  # fmt: skip
    blocks.append([
        (a, rng.choice([
            f"Want to {activity} at {place}? Around {time.spoken(rng)}?",
            f"How about we {activity}? {place.capitalize()} at {time.spoken(rng)}?",
            f"I thought we could {activity} at {place}, maybe {time.spoken(rng)}",
            f"Let's {activity}! {place.capitalize()}, {time.spoken(rng)}?",
        ])),
    ])  # fmt: skip
    dropped: list[str] = []
    change = rng.choice(("none", "time", "place", "time_rejected", "place_rejected", "late_time"))
    if change == "place" and len(ACTIVITIES[activity]) < 2:
        change = "time"
    if change == "place_rejected" and len(ACTIVITIES[activity]) < 2:
        change = "time_rejected"
    if change in ("time", "time_rejected"):
        other = _pick_time(rng, avoid=time, activity=activity)
        blocks[-1].append((b, rng.choice([
            f"{time.spoken(rng)} is a bit early for me, can we do {other.spoken(rng)}?",
            f"Sounds good but can we make it {other.spoken(rng)}?",
            f"I finish work late, what about {other.spoken(rng)}?",
        ])))  # fmt: skip
        if change == "time":
            blocks[-1].append((a, rng.choice([
                f"Sure, {other.spoken(rng)} works", "Fine by me", "OK, no problem",
            ])))  # fmt: skip
            dropped.append(time.summary())
            time = other
        else:
            blocks[-1].append((a, rng.choice([
                f"Can't, I have to be home early. {time.spoken(rng)} or never :P",
                f"Hmm, that's too late for me, let's keep {time.spoken(rng)}",
            ])))  # fmt: skip
            blocks[-1].append((b, rng.choice(["OK, I'll manage", "Fine, fine", "Alright"])))
            dropped.append(other.summary())
    elif change in ("place", "place_rejected"):
        other = rng.choice([p for p in ACTIVITIES[activity] if p != place])
        blocks[-1].append((b, rng.choice([
            f"Sure, but {place} is always full. What about {other}?",
            f"OK! Or {other}? It's closer to me",
            f"Good idea, but I prefer {other}",
        ])))  # fmt: skip
        if change == "place":
            blocks[-1].append((a, rng.choice([
                f"{other.capitalize()} it is", "Fine, your choice", f"OK, {other} then",
            ])))  # fmt: skip
            dropped.append(place)
            place = other
        else:
            blocks[-1].append((a, rng.choice([
                f"Nah, I already booked at {place}", f"I'd rather stay with {place}, sorry",
            ])))  # fmt: skip
            blocks[-1].append((b, rng.choice(["Fair enough", "OK then", "Fine"])))
            dropped.append(other)
    else:
        blocks[-1].append((b, rng.choice(["Sounds great!", "Sure, I'm in", "Perfect", "Deal"])))
    names = [a, b]
    third_note = ""
    if len(people) == 3:
        c = people[2]
        if rng.random() < 0.5:
            blocks.append([
                (c, rng.choice(["Can I join?", "Room for one more? :)", "I'm coming too!"])),
                (a, rng.choice(["Of course!", "Sure, the more the merrier", "Yes!"])),
            ])  # fmt: skip
            names.append(c)
        else:
            blocks.append([
                (c, rng.choice([f"I'd love to come but I can't {day_spoken}",
                                f"Can't make it {day_spoken}, sorry guys"])),
                (b, rng.choice(["Next time then!", "Shame :(", "No worries"])),
            ])  # fmt: skip
            third_note = f", and {c} can't join them"
    if change == "late_time":
        other = _pick_time(rng, avoid=time, activity=activity)
        blocks.append([
            (b, rng.choice([
                f"Actually, can we push it to {other.spoken(rng)}? Something came up",
                f"Small change: I can only be there at {other.spoken(rng)}, OK?",
            ])),
            (a, rng.choice(["No problem", "OK, see you then", "Fine"])),
        ])  # fmt: skip
        dropped.append(time.summary())
        time = other
    obj = rng.choice(OBJECTS)
    if rng.random() < 0.5:
        bringer = rng.choice(names)
        asker = rng.choice([n for n in names if n != bringer])
        blocks.append([
            (asker, rng.choice([f"Can you bring {obj}?", f"{bringer}, could you take {obj}?",
                                f"Don't forget {obj} pls"])),
            (bringer, rng.choice(["Sure", "Will do", "OK, I'll bring it", "Yes, no problem"])),
        ])  # fmt: skip
    else:
        bringer = rng.choice(names)
        blocks.append([(bringer, rng.choice([f"I'll bring {obj}", f"I'll take {obj} with me",
                                             f"I can bring {obj}"]))])  # fmt: skip
    blocks.append([(rng.choice(names), rng.choice(["See you then!", "Great, see you!", "Bye!"]))])
    who = _join_names(names)
    summary = rng.choice([
        f"{who} will {activity} at {place} {day} at {time.summary()}.",
        f"{who} are meeting at {place} {day} at {time.summary()} to {activity}.",
    ])  # fmt: skip
    summary += f" {bringer} will bring {obj}{third_note}."
    facts = {"people": names, "place": place, "time": time.summary(), "day": day,
             "object": obj, "bringer": bringer}  # fmt: skip
    return _Draft(blocks, summary, facts, dropped)


def _errand(rng: random.Random, people: list[str]) -> _Draft:
    """Someone asks for a favour; the asked person or a third one takes it on."""
    a, b = people[0], people[1]
    thing, place = rng.choice(ERRANDS)
    day, day_spoken = _pick_day(rng)
    verb = rng.choice(["pick up", "get"])
    blocks = [[
        (a, rng.choice([
            f"Could you {verb} {thing} from {place} {day_spoken}?",
            f"{b}, huge favour: can you {verb} {thing} at {place} {day_spoken}?",
            f"Any chance you're passing {place} {day_spoken}? I need {thing}",
        ])),
    ]]  # fmt: skip
    dropped: list[str] = []
    if len(people) == 3 and rng.random() < 0.6:
        c = people[2]
        blocks[0].append((b, rng.choice([
            f"Sorry, I'm away {day_spoken}", "I can't, I'm working all day", "No time, sorry :(",
        ])))  # fmt: skip
        blocks.append([
            (c, rng.choice(["I can do it, I'm going there anyway", f"I'll {verb} it for you",
                            "Leave it to me"])),
            (a, rng.choice([f"Thanks {c}!", "You're a star", "Thank you!!"])),
        ])  # fmt: skip
        doer = c
        summary = f"{b} can't help, so {c} will {verb} {thing} from {place} for {a} {day}."
    else:
        other_day, other_spoken = _pick_day(rng, avoid=day)
        if rng.random() < 0.5:
            blocks[0].append((b, rng.choice([
                f"Not {day_spoken}, but I can do it {other_spoken}", f"How about {other_spoken}?",
            ])))  # fmt: skip
            blocks[0].append((a, rng.choice(["That's fine", "OK, thanks!", "Perfect, thx"])))
            dropped.append(day)
            day = other_day
        else:
            blocks[0].append((b, rng.choice(["Sure, no problem", "Yes, I'll do it", "OK!"])))
        doer = b
        summary = f"{b} will {verb} {thing} from {place} for {a} {day}."
    if rng.random() < 0.5:
        blocks.append([
            (doer, rng.choice(["Is it paid already?", "Do I need anything to collect it?"])),
            (a, rng.choice(["Yes, just give my name", "It's all paid", "Just show them my msg"])),
        ])  # fmt: skip
    facts = {"people": [a, doer], "place": place, "object": thing, "day": day}
    return _Draft(blocks, summary, facts, dropped)


def _late(rng: random.Random, people: list[str]) -> _Draft:
    """Someone will be late; the delay may grow; the other one waits somewhere."""
    a, b = people[0], people[1]
    reason, phrasings = rng.choice(LATE_REASONS)
    minutes = rng.choice((10, 15, 20, 30, 40))
    place = rng.choice(ALL_PLACES)
    blocks = [[
        (a, rng.choice([f"Sorry, {rng.choice(phrasings)}", f"Bad news, {rng.choice(phrasings)}"])),
        (a, rng.choice([f"I'll be {minutes} min late", f"I'll be about {minutes} minutes late",
                        f"Give me {minutes} more minutes"])),
        (b, rng.choice(["No worries", "Again? :P", "OK, no rush"])),
    ]]  # fmt: skip
    dropped: list[str] = []
    if rng.random() < 0.4:
        new = minutes + rng.choice((10, 15, 20))
        blocks.append([
            (a, rng.choice([f"Make that {new}, sorry!!", f"Update: more like {new} minutes"])),
            (b, rng.choice(["Seriously?", "OK...", "Fine, I'll wait"])),
        ])  # fmt: skip
        dropped.append(f"{minutes} minutes")
        minutes = new
    action = rng.choice(["order food", "get a table", "wait", "order drinks"])
    blocks.append([
        (b, rng.choice([f"I'll {action} at {place} then", f"I'm at {place}, I'll {action}"])),
        (a, rng.choice(["Thanks!", "You're the best", "OK, see you soon"])),
    ])  # fmt: skip
    summary = f"{a} is {reason} and will be {minutes} minutes late. {b} will {action} at {place}."
    facts = {"people": [a, b], "minutes": f"{minutes} minutes", "place": place, "reason": reason}
    return _Draft(blocks, summary, facts, dropped)


def _lost(rng: random.Random, people: list[str]) -> _Draft:
    """Someone lost an item; a first guess of where it is may be corrected."""
    a, b = people[0], people[1]
    item = rng.choice(LOST_ITEMS)
    place = rng.choice(LOST_PLACES)
    day, day_spoken = _pick_day(rng)
    it, is_ = ("them", "are") if item in PLURAL_ITEMS else ("it", "is")
    blocks = [[
        (a, rng.choice([f"Have you seen my {item}?", f"I can't find my {item} anywhere!",
                        f"Help, I lost my {item}"])),
        (b, rng.choice([f"I think you left {it} {place}", f"Weren't they {place}?"
                        if it == "them" else f"Wasn't it {place}?"])),
    ]]  # fmt: skip
    dropped: list[str] = []
    if len(people) == 3 and rng.random() < 0.7:
        c = people[2]
        other = rng.choice([p for p in LOST_PLACES if p != place])
        blocks.append([
            (c, rng.choice([f"No, {it} {is_} {other}, I saw {it} there",
                            f"{it.capitalize()} {is_} {other}, I put {it} there for you"])),
            (a, rng.choice(["Phew, thanks!", "Oh thank god", "You saved me"])),
        ])  # fmt: skip
        dropped.append(place)
        place = other
    else:
        blocks[0].append((a, rng.choice(["Oh right, I'll check", "Hmm, maybe"])))
    blocks.append([(a, rng.choice([f"I'll get {it} {day_spoken}",
                                   f"I'll pick {it} up {day_spoken}"]))])  # fmt: skip
    summary = f"{a}'s {item} {is_} {place}. {a} will pick {it} up {day}."
    facts = {"people": [a], "object": item, "place": place, "day": day}
    return _Draft(blocks, summary, facts, dropped)


def _group_choice(rng: random.Random, people: list[str]) -> _Draft:
    """Three people choose between two outings; one of them wins, then a time is set."""
    a, b, c = people[0], people[1], people[2]
    day, day_spoken = _pick_day(rng)
    act1, act2 = rng.sample(sorted(ACTIVITIES), 2)
    place1, place2 = rng.choice(ACTIVITIES[act1]), rng.choice(ACTIVITIES[act2])
    if place1 == place2:
        act2 = next(x for x in sorted(ACTIVITIES) if place1 not in ACTIVITIES[x])
        place2 = rng.choice(ACTIVITIES[act2])
    blocks = [
        [(a, rng.choice([f"What shall we do {day_spoken}?", f"Plans for {day_spoken}, guys?"]))],
        [(b, rng.choice([f"We could {act1} at {place1}", f"I vote {place1}, let's {act1}"])),
         (c, rng.choice([f"Or {act2} at {place2}?", f"I'd rather {act2}, {place2}?"]))],
    ]  # fmt: skip
    if rng.random() < 0.5:
        act, place, dropped = act1, place1, [place2]
        blocks.append([(a, rng.choice([f"{place1.capitalize()} sounds better", f"I'm with {b}"])),
                       (c, rng.choice(["Fine, outvoted", "OK, next time my idea"]))])  # fmt: skip
    else:
        act, place, dropped = act2, place2, [place1]
        blocks.append([(a, rng.choice([f"{place2.capitalize()}!", f"I'm with {c} on this one"])),
                       (b, rng.choice(["OK, fine", "Alright, you win"]))])  # fmt: skip
    time = _pick_time(rng, activity=act)
    blocks.append([
        (a, rng.choice([f"{time.spoken(rng)}?", f"Meet there at {time.spoken(rng)}?"])),
        (rng.choice((b, c)), rng.choice(["Works for me", "OK", "Sure"])),
    ])  # fmt: skip
    summary = f"{a}, {b} and {c} will {act} at {place} {day} at {time.summary()}."
    facts = {"people": [a, b, c], "place": place, "day": day, "time": time.summary()}
    return _Draft(blocks, summary, facts, dropped)


def _cancel(rng: random.Random, people: list[str]) -> _Draft:
    """A plan is cancelled and moved to another day."""
    a, b = people[0], people[1]
    reason, phrasings = rng.choice(CANCEL_REASONS)
    activity = rng.choice(sorted(ACTIVITIES))
    place = rng.choice(ACTIVITIES[activity])
    day, day_spoken = _pick_day(rng)
    new_day, new_spoken = _pick_day(rng, avoid=day)
    if rng.random() < 0.5:  # the opening names the place, so the follow-up names the activity
        opening = f"I'm so sorry, I can't come to {place} {day_spoken}"
        follow = f"Shall we {activity} {new_spoken} instead?"
    else:
        opening = rng.choice(
            [
                f"Bad news, I can't {activity} at {place} {day_spoken}",
                f"Sorry, {day_spoken} at {place} is off, I can't {activity}",
            ]
        )
        follow = rng.choice([f"Shall we go {new_spoken} instead?", f"Maybe {new_spoken}?"])
    blocks = [[
        (a, opening),
        (a, rng.choice(phrasings)),
        (b, rng.choice(["Oh no :(", "That's a pity", "Don't worry about it"])),
    ], [
        (b, follow),
        (a, rng.choice(["Yes, deal!", "Perfect", f"{new_spoken.capitalize()} works"])),
    ]]  # fmt: skip
    summary = (f"{a} {reason} and can't {activity} with {b} at {place} {day}. "
               f"They will go {new_day} instead.")  # fmt: skip
    facts = {"people": [a, b], "place": place, "day": new_day}
    return _Draft(blocks, summary, facts, [])


_SCENARIOS = (_meet, _meet, _meet, _errand, _late, _lost, _group_choice, _cancel)


# --------------------------------------------------------------------------------------------
# Assembly


def _chitchat(
    rng: random.Random, people: list[str], exclude: set[str], index: int | None
) -> list[tuple[str, str]]:
    """One filler line, or the chit-chat exchange `CHITCHAT[index]` (a random one if None)."""
    first, second = rng.sample(people, 2)
    if rng.random() < 0.2:
        return [(first, rng.choice(FILLERS))]
    q, r = CHITCHAT[index] if index is not None else rng.choice(CHITCHAT)
    fill = {
        "place": _other_place(rng, exclude),
        "time": _pick_time(rng).spoken(rng),
        "name": rng.choice([n for n in NAMES if n not in people]),
    }
    return [(first, q.format(**fill)), (second, r.format(**fill))]


def _words(lines: list[tuple[str, str]]) -> int:
    return sum(len(f"{s}: {t}".split()) for s, t in lines)


def _render(rng: random.Random) -> tuple[str, str, dict[str, Any], list[str]]:
    n_people = 3 if rng.random() < 0.4 else 2
    people = rng.sample(NAMES, n_people)
    scenario = rng.choice([s for s in _SCENARIOS if s is not _group_choice or n_people == 3])
    draft = scenario(rng, people)
    exclude = {str(v) for v in draft.facts.values() if isinstance(v, str)} | set(draft.dropped)
    target = rng.randint(MIN_WORDS, MAX_WORDS)
    max_extra = rng.randint(1, 6)  # chit-chat exchanges, unless needed to reach MIN_WORDS
    blocks = draft.blocks
    total = sum(_words(b) for b in blocks)
    # Chit-chat goes between blocks (never inside a question/answer pair), at the start, or at
    # the end; it stops at the target length, or when the next one would pass MAX_WORDS.
    chat = list(range(len(CHITCHAT)))
    rng.shuffle(chat)
    n_extra = 0
    while total < MIN_WORDS or (total < target and n_extra < max_extra):
        extra = _chitchat(rng, people, exclude, chat.pop() if chat else None)
        if total + _words(extra) > MAX_WORDS:
            if total >= MIN_WORDS:
                break
            continue
        blocks.insert(rng.randint(0, len(blocks)), extra)
        total += _words(extra)
        n_extra += 1
    lines = [line for block in blocks for line in block]
    dialogue = "\n".join(f"{speaker}: {text}" for speaker, text in lines)
    return dialogue, draft.summary, draft.facts, draft.dropped


def generate_dialogues(n: int, seed: int, *, with_facts: bool = False) -> list[dict[str, Any]]:
    """`n` synthetic dialogues, identical for identical `(n, seed)`.

    Each dict has `id` (`synthetic-<seed>-<i>`), `dialogue` (`Name: utterance` lines joined by
    `\\n`, 40-150 words) and `summary` (1-2 sentences, one line). With `with_facts=True` it also
    has `facts` (the final plan's values as written in the summary) and `dropped` (values proposed
    and then abandoned in the dialogue, which the summary must not state).
    """
    if n < 0:
        raise ValueError(f"n={n}: must be >= 0")
    out: list[dict[str, Any]] = []
    for i in range(n):
        rng = random.Random(f"greentune-synthetic/{seed}/{i}")
        dialogue, summary, facts, dropped = _render(rng)
        row: dict[str, Any] = {"id": f"synthetic-{seed}-{i}", "dialogue": dialogue,
                               "summary": summary}  # fmt: skip
        if with_facts:
            row["facts"] = facts
            row["dropped"] = dropped
        out.append(row)
    return out


SPLIT_OFFSETS = {"train": 0, "validation": 1, "test": 2}  # used by split_seed
_SEED_STRIDE = 4  # > number of splits, so (seed, split) -> generator seed is one-to-one


def split_seed(seed: int, split: str) -> int:
    """The generator seed of `split` under a study seed: `seed * 4 + offset(split)`.

    Offsets: train 0, validation 1, test 2. The map is one-to-one over all integer seeds and these
    splits, so no two (seed, split) pairs share a generator seed. Other split names raise
    `KeyError`.
    """
    return seed * _SEED_STRIDE + SPLIT_OFFSETS[split]
