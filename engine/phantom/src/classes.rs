//! Label ids, from RadGrounder's merged label map (`assets/labels/merged_label_map.json`).

pub const SPLEEN: u8 = 1;
pub const KIDNEY_RIGHT: u8 = 2;
pub const KIDNEY_LEFT: u8 = 3;
pub const GALLBLADDER: u8 = 4;
pub const LIVER: u8 = 5;
pub const STOMACH: u8 = 6;
pub const PANCREAS: u8 = 7;
pub const LUNG_UPPER_LOBE_LEFT: u8 = 10;
pub const LUNG_LOWER_LOBE_LEFT: u8 = 11;
pub const LUNG_UPPER_LOBE_RIGHT: u8 = 12;
pub const LUNG_MIDDLE_LOBE_RIGHT: u8 = 13;
pub const LUNG_LOWER_LOBE_RIGHT: u8 = 14;
pub const ESOPHAGUS: u8 = 15;
pub const TRACHEA: u8 = 16;
pub const URINARY_BLADDER: u8 = 21;
/// L5; the vertebrae above count up to [`VERTEBRAE_T1`] (L4 28, ..., L1 31, T12 32, ..., T1 43).
pub const VERTEBRAE_L5: u8 = 27;
pub const VERTEBRAE_T1: u8 = 43;
pub const HEART: u8 = 51;
pub const AORTA: u8 = 52;

/// Every class a phantom contains, with its name in the label map.
pub const CLASSES: &[(u8, &str)] = &[
    (1, "spleen"),
    (2, "kidney_right"),
    (3, "kidney_left"),
    (4, "gallbladder"),
    (5, "liver"),
    (6, "stomach"),
    (7, "pancreas"),
    (10, "lung_upper_lobe_left"),
    (11, "lung_lower_lobe_left"),
    (12, "lung_upper_lobe_right"),
    (13, "lung_middle_lobe_right"),
    (14, "lung_lower_lobe_right"),
    (15, "esophagus"),
    (16, "trachea"),
    (21, "urinary_bladder"),
    (27, "vertebrae_L5"),
    (28, "vertebrae_L4"),
    (29, "vertebrae_L3"),
    (30, "vertebrae_L2"),
    (31, "vertebrae_L1"),
    (32, "vertebrae_T12"),
    (33, "vertebrae_T11"),
    (34, "vertebrae_T10"),
    (35, "vertebrae_T9"),
    (36, "vertebrae_T8"),
    (37, "vertebrae_T7"),
    (38, "vertebrae_T6"),
    (39, "vertebrae_T5"),
    (40, "vertebrae_T4"),
    (41, "vertebrae_T3"),
    (42, "vertebrae_T2"),
    (43, "vertebrae_T1"),
    (51, "heart"),
    (52, "aorta"),
];

/// The label map name of a class id this crate uses.
pub fn name(id: u8) -> Option<&'static str> {
    CLASSES.iter().find(|(c, _)| *c == id).map(|(_, n)| *n)
}
