"""Background: how MRI, CT and X-ray make an image, their risks and uses, and real examples from the dataset."""
import pandas as pd
import streamlit as st

from medimg_app import cache, widgets
from medimg_app.presentation import examples_grid
from medimg_core import get_task
from medimg_core.data.datasets import DataError
from medimg_core.reports.story import DISCLAIMER

MODALITIES = ("X-ray", "CT", "MRI")

HOW = {
    "X-ray": (
        "An X-ray tube sends a short burst of X-rays through the body to a detector on the other side. Tissues "
        "absorb X-rays to different degrees: bone, rich in calcium, absorbs a lot and looks **white**; air in the "
        "lungs absorbs little and looks **black**; soft tissue and fluid are shades of grey. The result is one flat "
        "(2-D) picture in which everything along the beam's path is superimposed."
    ),
    "CT": (
        "Computed tomography also uses X-rays, but the tube and the detectors **rotate around the patient**, who "
        "lies on a table that moves through a ring-shaped scanner. From many projections a computer reconstructs "
        "thin **cross-sectional slices**, which can be stacked into a 3-D volume. Each pixel measures how strongly "
        "the tissue absorbs X-rays (in Hounsfield units: air about −1000, water 0, dense bone +1000 and more), so "
        "structures no longer overlap and soft tissues are far better separated than on a plain X-ray."
    ),
    "MRI": (
        "Magnetic resonance imaging uses a **strong magnetic field and radio waves**, not X-rays. The field lines up "
        "the hydrogen nuclei (protons) of the water and fat in the body; radio pulses tip them over, and as they "
        "relax they send out faint radio signals. Extra, switchable magnetic field gradients encode where each "
        "signal comes from, and a computer builds slices in any orientation. Different pulse sequences (for "
        "example T1- or T2-weighted) make different tissues bright or dark: MRI's strength is **soft-tissue "
        "contrast**."
    ),
}

RADIATION = """
**X-ray and CT use ionising radiation**: X-rays carry enough energy to knock electrons out of atoms and can damage
DNA. The dose of a single examination is small and so is the extra risk to one person, but doses add up over many
scans and children are more sensitive, so every scan should be justified and use no more dose than needed to answer
the clinical question. Doses vary with the body part, the scanner and the protocol; as a rough guide, a chest X-ray
is about 0.1 mSv (around ten days of natural background radiation), a CT of the head about 2 mSv and a CT of the
abdomen and pelvis around 8 to 10 mSv (a few years of background).

**MRI uses no ionising radiation.** Its risks come from the strong magnet and the radio waves: metal objects can
be pulled into the scanner, and some implants, devices and metal fragments can move, heat up or stop working, so
everyone is checked with a safety questionnaire before entering the scanner room (many modern implants are
labelled "MR conditional" and can be scanned under set conditions).

Anyone who is or might be pregnant should say so before any of these examinations.
"""

CONTRAST = """
Contrast agents make blood vessels, organs or abnormal tissue stand out more clearly.

- **CT**: iodine-based (*iodinated*) contrast, usually injected into a vein; some abdominal scans also use a
  contrast drink to outline the bowel. A warm feeling or a metallic taste during the injection is common and passes
  quickly.
- **MRI**: *gadolinium-based* contrast agents, injected into a vein.
- **X-ray**: most examinations need none; special studies use barium (swallowed or as an enema) or iodinated
  contrast.

**Risks.** Allergic-type reactions are uncommon with iodinated contrast and rarer still with gadolinium. Most are mild
(itching, hives, nausea) and settle quickly; severe reactions are rare, and radiology departments are equipped to
treat them. An earlier reaction to contrast, asthma or several allergies make a reaction more likely.
**Kidneys**: both kinds of agent leave the body through the kidneys. In people with severely reduced kidney
function, iodinated contrast may worsen kidney function, and some older gadolinium agents were linked to a rare but
serious condition, nephrogenic systemic fibrosis; so kidney function may be checked first, and the agent and the
dose are chosen with care. Traces of gadolinium can remain in the body (for example in the brain and bones) for a
long time; no harm from this has been shown, but it is one more reason to give contrast only when it adds
information. Tell the staff about earlier reactions, allergies or asthma, kidney problems, diabetes, and pregnancy
or breast-feeding.
"""

OPEN_CLOSED = """
In a **closed MRI** scanner you lie on a table that slides into a tunnel about 60 to 70 cm wide. An examination
usually takes 15 to 90 minutes, depending on the body part and the number of images; the scanner knocks loudly, so
ear protection is given, and you must lie still. Many people find the tunnel confining: **claustrophobia and
anxiety** are a common reason for a scan to be stopped. It helps to know what will happen, to listen to music, to
keep talking with the radiographer (there is always a call button), to use a mirror or keep the eyes closed, to go
in feet first where the examination allows, to use a wide-bore (70 cm) or shorter scanner, and sometimes to take a
mild sedative.

An **open MRI** scanner has its magnet above and below the patient and is open at the sides. It suits people with
claustrophobia, larger people and children, and allows some examinations in other positions; but open scanners
usually have a weaker magnetic field, so images can be less detailed or take longer, and not every examination can
be done on them.
"""

USES = {
    "MRI": """
- **Brain and spinal cord**: aneurysms, injuries, disorders of the eye and inner ear, multiple sclerosis, stroke,
  tumours. (In an emergency, CT often comes first because it is faster and quickly shows bleeding; MRI shows an
  early stroke from a blocked artery more sensitively.)
- **Heart and blood vessels**: the structure and function of the heart's chambers, valves and walls, blockages or
  narrowing of vessels, blood flow, and damage after a heart attack.
- **Soft tissue, joints and breast**: organs such as the liver, pancreas, kidneys, prostate and uterus; torn
  ligaments, tendons and cartilage; the spine and its discs; breast MRI alongside mammography for women at high risk
  of breast cancer and to assess a known cancer.
""",
    "CT": """
- When an **X-ray or ultrasound is inconclusive**, and when detail is needed of **blood vessels, soft tissue and
  bone** at once.
- **Emergencies**: head injury and suspected stroke (bleeding), internal injuries after an accident, complex
  fractures.
- **Vessels** with contrast (CT angiography): e.g. clots in the lung arteries, aneurysms, narrowed arteries.
- **Chest and abdomen**: lung nodules and infections, appendicitis, kidney stones, abscesses.
- **Cancer**: finding and staging tumours, following treatment, planning radiotherapy, guiding needle biopsies.
""",
    "X-ray": """
- **Bones and joints**: fractures, dislocations, arthritis; a child's bone age from a hand X-ray (the hand
  images in this app's dataset come from a bone-age collection).
- **Chest**: pneumonia, the size of the heart, fluid around the lungs, a collapsed lung, the position of tubes and
  lines.
- **Teeth**, swallowed objects; **mammography** is a specialised low-dose X-ray of the breast.
- Often the **first test**: fast, cheap and available almost everywhere, including portable machines at the bedside.
""",
}

COMPARISON = {
    "How the image is made": ("X-rays pass through the body onto a detector: one 2-D projection",
                              "A rotating X-ray tube and detectors; a computer reconstructs cross-sectional slices",
                              "A strong magnet and radio waves; signals from hydrogen nuclei are reconstructed into slices"),
    "Ionising radiation": ("Yes, low dose (chest: about 0.1 mSv)", "Yes, higher (often about 2 to 10 mSv)", "None"),
    "Time in the scanner": ("Seconds to minutes", "The scan itself: seconds to a few minutes", "Usually 15 to 90 minutes"),
    "Shows best": ("Bone, lungs, teeth", "Bone, bleeding, lungs, abdomen, vessels; fast in emergencies",
                   "Soft tissue: brain, spinal cord, heart, joints, breast, abdominal and pelvic organs"),
    "Contrast agent": ("Usually none (barium or iodinated for special studies)", "Iodinated, usually into a vein",
                       "Gadolinium-based, into a vein"),
    "Contrast risks": ("Rarely relevant", "Allergic-type reactions uncommon, mostly mild; care with poor kidney function",
                       "Allergic-type reactions rarer; care with severe kidney disease"),
    "What it is like": ("Quick and quiet", "Quick; an open ring, not a tunnel",
                        "Loud; lie still in a tunnel (closed) or an open scanner; claustrophobia possible"),
    "Metal and implants": ("Not a safety issue; metal shows up bright",
                           "Seldom a safety issue (a few electronic devices need precautions); metal causes streaks",
                           "Safety screening first: some implants, devices and metal fragments are unsafe"),
    "Cost and availability": ("Cheapest, almost everywhere, portable", "Widely available in hospitals",
                              "Most expensive, fewer scanners, longer waits"),
}


def comparison_table() -> pd.DataFrame:
    """The side-by-side table; its last row lists the dataset's classes of each modality."""
    rows = dict(COMPARISON)
    spec = get_task("modality")
    rows["Classes in this app's dataset"] = tuple(
        ", ".join(c for c in spec.classes if spec.facts(c).modality == modality) for modality in MODALITIES)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(MODALITIES))


def examples_section() -> None:
    """Real examples of each class from the downloaded dataset, and what the shipped model attends to."""
    st.header("Real examples, and what the model attends to")
    spec = get_task("modality")
    if "modality" not in cache.shipped_tasks():
        st.info("The scan-type model is not installed, so there are no heatmaps to show.")
        return
    source = cache.data_source("modality")
    if source is None:
        widgets.offer_download(spec)
        return
    try:
        examples = cache.class_examples("modality", *source, cache.model_stamp("modality"))
    except DataError as err:
        st.error(f"The examples cannot be read: {err}")
        return
    order = {m: i for i, m in enumerate(("MRI", "CT", "X-ray"))}
    examples = sorted(examples, key=lambda e: order.get(e.modality, len(order)))
    st.markdown(
        f"From the {spec.source.filename} dataset, per class: the **mean** of {examples[0].n if examples else 0} "
        "validation images (what is typical of the class), the **typical example** (the validation image closest to "
        "that mean which the model labels correctly) and its **Grad-CAM** heatmap for the predicted class.")
    examples_grid(examples)
    st.caption(widgets.HEATMAP_CAPTION)
    st.markdown(
        "Notice how much the classes differ in overall shape and brightness: the breast MRI, the chest X-ray, the hand "
        "and the head CT have very different outlines, while the two body CT classes (abdomen and chest) look most "
        f"alike. {errors_text(cache.model_card('modality'))}")


def errors_text(card: dict) -> str:
    """The shipped model's validation errors, read from its card's confusion matrix."""
    v = card.get("validation", {})
    cm, classes = v.get("confusion_matrix"), v.get("classes", [])
    if not cm or len(cm) != len(classes):
        return ""
    pairs = [f"{cm[t][p]} {classes[t]} image{'s' if cm[t][p] > 1 else ''} as {classes[p]}"
             for t in range(len(classes)) for p in range(len(classes)) if t != p and cm[t][p]]
    n = sum(map(sum, cm))
    if not pairs:
        return f"The shipped model labels all {n:,} of its validation images correctly."
    return f"Of its {n:,} validation images, the shipped model mislabels {' and '.join(pairs)}."


st.title("MRI vs CT vs X-ray")
st.markdown(
    "The images in this app come from three ways of looking inside the body. This page explains, in brief, how each "
    "one makes an image, what it costs the patient (radiation, contrast agents, time in a scanner) and what it is "
    "typically used for; then it shows real examples from the dataset and where the model looks.")
st.info(f"{DISCLAIMER} This page is a simplified overview for learning, not medical advice: questions about a "
        "particular scan belong with the doctor or radiographer looking after you.", icon=":material/school:")

st.header("How each one makes an image")
for col, modality in zip(st.columns(3, gap="large"), MODALITIES):
    with col:
        st.subheader(modality)
        st.markdown(HOW[modality])

left, right = st.columns(2, gap="large")
with left:
    st.header("Radiation")
    st.markdown(RADIATION)
with right:
    st.header("Contrast agents")
    st.markdown(CONTRAST)

st.header("Open and closed MRI")
st.markdown(OPEN_CLOSED)

st.header("What each is typically used for")
for col, modality in zip(st.columns(3, gap="large"), ("MRI", "CT", "X-ray")):
    with col:
        st.subheader(modality)
        st.markdown(USES[modality])

st.header("Side by side")
st.table(comparison_table().fillna(widgets.EMPTY_CELL))

examples_section()
st.caption("Further reading: patient information from RadiologyInfo.org (RSNA and ACR) and from national health "
           "services, e.g. the NHS pages on X-rays, CT scans and MRI scans.")
