//! Text from strangers, made safe and short for a terminal.

/// At most `max` characters of `text`, on one line, with control and
/// direction-changing characters replaced: names, titles and error texts
/// come from whoever signed an entry or serves a node, and must not move
/// the cursor, recolour the terminal or reorder what is printed around them.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| match c {
            '\n' | '\t' => ' ',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '?',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// `1234567` as `1,234,567`: counts a person reads at a glance.
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234), "1,234");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn escapes_and_reorderings_do_not_reach_the_terminal() {
        assert_eq!(printable("a\x1b[31mb\nc\u{202e}d", 100), "a?[31mb c?d");
        assert_eq!(printable("abcdef", 3), "abc");
    }
}
