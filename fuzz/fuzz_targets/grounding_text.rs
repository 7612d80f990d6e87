#![no_main]
// The grounding parsers on any model text: every output convention, then each finding placed on
// slices of odd sizes. Model output is untrusted (a server's answer, a corrupted store).

use groundglass_grounding::{parser_for, Format, LabelMap, Language};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let formats = [
        Format::RadGrounder,
        Format::PaliGemma,
        Format::Qwen25 {
            input_width: 448.0,
            input_height: 336.0,
        },
        Format::Qwen3,
    ];
    for format in formats {
        for language in [Language::En, Language::De] {
            let parser = parser_for(format, LabelMap::radgrounder(), language);
            for finding in parser.parse(&text) {
                for (w, h) in [(1, 1), (224, 224), (512, 300), (0, 7)] {
                    let _ = finding.box_px(w, h);
                    let _ = finding.located_in(w, h);
                }
            }
        }
    }
});
