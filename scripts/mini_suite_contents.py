"""What the bundled mini suite holds: its speakers (espeak-ng voices) and every sentence, story, question and answer
of each dataset, as data. ``make_mini_suite.py`` renders them into the official on-disk layouts."""

# --------------------------------------------------------------------------------------------------------------
# Speakers: label -> (espeak-ng voice, words per minute, sex)
# --------------------------------------------------------------------------------------------------------------
SPEAKERS: dict[str, tuple[str, int, str]] = {
    "us_m": ("en-us", 205, "M"),
    "us_f3": ("en-us+f3", 200, "F"),
    "us_m3": ("en-us+m3", 210, "M"),
    "us_f5": ("en-us+f5", 200, "F"),
    "gb_m": ("en-gb", 205, "M"),
    "gb_f2": ("en-gb+f2", 205, "F"),
    "gb_f3": ("en-gb+f3", 205, "F"),
    "rp_m": ("en-gb-x-rp", 205, "M"),
    "rp_f2": ("en-gb-x-rp+f2", 200, "F"),
    "scot_m": ("en-gb-scotland", 205, "M"),
    "car_m": ("en-029", 205, "M"),
    "car_f4": ("en-029+f4", 200, "F"),
    "lanc_m": ("en-gb-x-gbclan", 205, "M"),
}

# --------------------------------------------------------------------------------------------------------------
# Dataset contents
# --------------------------------------------------------------------------------------------------------------
# LibriSpeech: subset -> [(speaker id, speaker label, [(chapter id, [sentences])])]
LIBRISPEECH = {
    "test-clean": [
        ("1089", "us_m", [
            ("134686", ["THE OLD MAN SAT DOWN", "HE SAID NOTHING AT ALL"]),
            ("134691", ["THE ROAD RAN NORTH", "A COLD WIND BLEW ALL NIGHT"]),
        ]),
        ("121", "us_f3", [
            ("121123", ["SHE OPENED THE LETTER", "IT WAS FROM HER BROTHER"]),
            ("121726", ["THE GARDEN WAS FULL OF ROSES", "SHE DIDN'T KNOW THE WAY"]),
        ]),
        ("1221", "gb_f2", [
            ("135766", ["THE SHIP LEFT AT DAWN", "NOBODY SAID A WORD"]),
            ("135767", ["THE CHILDREN RAN HOME", "THEIR MOTHER WAS WAITING"]),
        ]),
    ],
    "test-other": [
        ("1688", "scot_m", [
            ("142285", ["THE CANDLE BURNED LOW", "HE READ UNTIL MORNING", "THE DOCTOR'S HOUSE WAS DARK"]),
        ]),
        ("1998", "car_f4", [
            ("29454", ["THE BIRDS SANG SOFTLY", "SHE WALKED TO THE GATE", "THE SUN WAS WARM"]),
        ]),
    ],
}

# VoxPopuli: (id, raw_text, normalized_text, speaker_id, gender, speaker label)
VOXPOPULI = [
    ("20180612-0900-PLENARY-15-en_20180612-165523_3", "We must protect our farmers and our rivers.",
     "we must protect our farmers and our rivers", "124737", "male", "rp_m"),
    ("20180612-0900-PLENARY-15-en_20180612-170112_5", "This report is a good first step.",
     "this report is a good first step", "96750", "female", "gb_f3"),
    ("20190115-0900-PLENARY-7-en_20190115-101204_2", "I thank the rapporteur for her work.",
     "i thank the rapporteur for her work", "28299", "male", "lanc_m"),
    ("20190115-0900-PLENARY-7-en_20190115-103347_8", "Twenty countries have signed the agreement.",
     "twenty countries have signed the agreement", "197658", "female", "us_f5"),
]
VOXPOPULI_TSV_HEADER = ["id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
                        "is_gold_transcript", "accent"]

# Common Voice 15.0: (clip number, sentence, gender, age, accents, speaker label)
CV_VERSION_DIR = "cv-corpus-15.0-2023-09-08"
COMMONVOICE = [
    (19000101, "The museum opens at nine every morning.", "female", "twenties", "United States English", "us_f3"),
    (19000245, "He parked the car behind the old bakery.", "male", "thirties", "England English", "gb_m"),
    (19000388, "Please close the window before you leave.", "male", "fourties", "Scottish English", "scot_m"),
    (19000412, "Our train was late again this evening.", "female", "twenties", "Caribbean English", "car_f4"),
]
CV_TSV_HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents",
                 "variant", "locale", "segment"]

# Seed-TTS-eval (English): (prompt clip id, target clip id, prompt text, infer text, speaker label)
SEEDTTS = [
    ("common_voice_en_20010001", "common_voice_en_20010002", "The weather was lovely all weekend.",
     "We should plant more trees in the park.", "us_f3"),
    ("common_voice_en_20010011", "common_voice_en_20010012", "He kept the keys in his coat pocket.",
     "The library closes early on Sundays.", "scot_m"),
    ("common_voice_en_20010021", "common_voice_en_20010022", "My sister bakes bread every Friday.",
     "Turn left at the second traffic light.", "car_m"),
    ("common_voice_en_20010031", "common_voice_en_20010032", "The meeting lasted almost two hours.",
     "A small boat drifted across the lake.", "rp_f2"),
]

# ZeroSpeech 2021 sLM21, lexical: (word, word phones, non-word spelling, non-word phones, LibriSpeech frequency)
# Phones are ARPAbet without stress marks (the real words' CMU dictionary pronunciations); non-word phones are
# the intended pronunciation of the spelling.  Frequencies are synthetic and chosen to hit every band edge of the
# official bins [0,1), [1,5), [5,20), [20,100), [100,inf).
LEXICAL = [
    ("water", "W AO T ER", "fawter", "F AO T ER", 12000),
    ("window", "W IH N D OW", "wintow", "W IH N T OW", 2000),
    ("doctor", "D AA K T ER", "noctor", "N AA K T ER", 350),
    ("garden", "G AA R D AH N", "gardel", "G AA R D AH L", 100),
    ("silver", "S IH L V ER", "silmer", "S IH L M ER", 99),
    ("kitchen", "K IH CH AH N", "kitchet", "K IH CH AH T", 20),
    ("basket", "B AE S K AH T", "baspet", "B AE S P AH T", 19),
    ("candle", "K AE N D AH L", "cangle", "K AE NG G AH L", 5),
    ("rabbit", "R AE B AH T", "rabbick", "R AE B AH K", 4),
    ("brick", "B R IH K", "drick", "D R IH K", 1),
    ("pencil", "P EH N S AH L", "pentil", "P EH N T AH L", 0),
    ("lemon", "L EH M AH N", "lemod", "L EH M AH D", 0),
]
SLM_VOICES = ["us_m", "gb_f3"]
LEXICAL_HEADER = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]

# sLM21 syntactic: (type, subtype, correct sentence, incorrect sentence); ids restart per (type, subtype) and the
# voice alternates over SLM_VOICES.
SYNTACTIC = [
    ("anaphor_agreement", "anaphor_gender_agreement", "The girl hurt herself.", "The girl hurt himself."),
    ("anaphor_agreement", "anaphor_gender_agreement", "The man saw himself.", "The man saw herself."),
    ("anaphor_agreement", "anaphor_number_agreement", "The boys saw themselves.", "The boys saw himself."),
    ("determiner_noun_agreement", "determiner_noun_agreement_1", "Anna read this book.", "Anna read these book."),
    ("determiner_noun_agreement", "determiner_noun_agreement_1", "Tom sold those chairs.", "Tom sold that chairs."),
    ("determiner_noun_agreement", "determiner_noun_agreement_irregular_1", "Mary saw these children.",
     "Mary saw this children."),
    ("irregular_forms", "irregular_past_participle_verbs", "The cat had eaten.", "The cat had ate."),
    ("irregular_forms", "irregular_past_participle_verbs", "The boy has written.", "The boy has wrote."),
]
SYNTACTIC_HEADER = ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]

# Spoken StoryCloze: (context sentences, correct ending, sSC-style wrong ending, speaker label).
# sSC uses the story's own plausible-but-wrong ending; tSC uses the correct ending of another tSC story.
SSC_STORIES = [
    ("Tom was hungry. He made soup.", "He ate it all.", "He was not hungry.", "us_m"),
    ("Anna lost her keys. She looked around.", "She found them.", "She lost her hat.", "gb_f3"),
    ("It began to rain. Ben had no umbrella.", "He got wet.", "He stayed dry.", "us_m3"),
]
TSC_STORIES = [
    ("Lucy wanted a dog. Dad said yes.", "She named him Max.", "rp_m"),
    ("The team trained hard. They made the final.", "They won the cup.", "us_f5"),
    ("Sam baked a cake. The oven was too hot.", "The cake burned.", "car_m"),
]

# Llama Questions: (question, answer, speaker label); wav n = row number starting at 1
LLAMA_QUESTIONS = [
    ("What is the capital of France?", "Paris", "us_m"),
    ("How many legs does a spider have?", "eight", "gb_f2"),
    ("Which planet is known as the red planet?", "Mars", "us_m3"),
    ("What color is the sky on a clear day?", "blue", "us_f3"),
]

# Spoken WebQuestions: (freebase url, question, answers, speaker label)
WEBQUESTIONS = [
    ("http://www.freebase.com/view/en/eiffel_tower", "what country is the eiffel tower in?", ["France"], "us_m3"),
    ("http://www.freebase.com/view/en/brazil", "what language do they speak in brazil?",
     ["Portuguese", "Portuguese Language"], "rp_f2"),
    ("http://www.freebase.com/view/en/romeo_and_juliet", "who wrote romeo and juliet?",
     ["William Shakespeare", "Shakespeare"], "lanc_m"),
]

# Spoken TriviaQA: (question, answer aliases, speaker label)
TRIVIAQA = [
    ("Which element has the symbol O?", ["Oxygen", "O", "oxygen gas"], "gb_m"),
    ("How many sides does a hexagon have?", ["6", "six"], "us_f5"),
    ("Who painted the Mona Lisa?", ["Leonardo da Vinci", "Da Vinci", "Leonardo"], "car_f4"),
]

STEM_SEED = 20210309
STEM_LEN = 11
