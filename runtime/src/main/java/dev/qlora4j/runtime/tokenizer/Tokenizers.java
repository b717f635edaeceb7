package dev.qlora4j.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Loads tokenizers from model directories and files: HF {@code tokenizer.json}, HF/transformers
 * {@code vocab.json + merges.txt}, and OpenAI's {@code encoder.json + vocab.bpe}.
 *
 * <p>BOS/EOS/PAD/UNK come from {@code special_tokens_map.json} over {@code tokenizer_config.json}
 * when the directory has them; names neither file mentions fall back to the usual special tokens
 * ({@code <|endoftext|>} → bos and eos, {@code <s>}, {@code </s>}, {@code <pad>}, {@code <unk>}).
 * Post-processors are not applied: no encode call adds BOS/EOS by itself.
 */
public final class Tokenizers {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Tokenizers() {}

    /**
     * The tokenizer of a model directory: {@code tokenizer.json} if present, else
     * {@code vocab.json + merges.txt}, else {@code encoder.json + vocab.bpe}.
     */
    public static ByteLevelBpeTokenizer load(Path modelDir) throws IOException {
        if (!Files.isDirectory(modelDir)) throw new IOException("tokenizer directory " + modelDir + " does not exist or is not a directory");
        Path tj = modelDir.resolve("tokenizer.json");
        if (Files.isRegularFile(tj)) return fromTokenizerJson(tj);
        Path vocab = modelDir.resolve("vocab.json"), merges = modelDir.resolve("merges.txt");
        if (Files.isRegularFile(vocab) && Files.isRegularFile(merges)) return fromVocabAndMerges(vocab, merges);
        Path enc = modelDir.resolve("encoder.json"), bpe = modelDir.resolve("vocab.bpe");
        if (Files.isRegularFile(enc) && Files.isRegularFile(bpe)) return fromVocabAndMerges(enc, bpe);
        throw new IOException("no tokenizer in " + modelDir.toAbsolutePath()
                + ": expected tokenizer.json, or vocab.json + merges.txt, or encoder.json + vocab.bpe");
    }

    // ---------------------------------------------------------------- vocab.json + merges.txt

    /**
     * {@code vocab.json + merges.txt} (or OpenAI's {@code encoder.json + vocab.bpe}, the same
     * formats) with GPT-2's pre-tokenizer. Added/special tokens come from the sibling
     * {@code tokenizer_config.json} / {@code special_tokens_map.json} / {@code added_tokens.json};
     * {@code <|endoftext|>}, when in the vocab, is always special (as in every GPT-2-family tokenizer).
     */
    public static ByteLevelBpeTokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) throws IOException {
        ByteLevelBpeTokenizer.Builder b = ByteLevelBpeTokenizer.builder()
                .vocab(readVocab(readJson(vocabJson), vocabJson))
                .merges(readMergesTxt(mergesTxt))
                .preTokenizer(new PreTokenizer.ByteLevel(false, true));
        Path dir = vocabJson.toAbsolutePath().getParent();
        SpecialConfig cfg = SpecialConfig.read(dir);
        cfg.addedTokens.forEach(b::addedToken);
        Path addedJson = dir.resolve("added_tokens.json");
        if (Files.isRegularFile(addedJson)) {
            JsonNode root = readJson(addedJson);
            for (var it = root.fields(); it.hasNext(); ) {
                var e = it.next();
                int id = e.getValue().asInt();
                if (!b.hasAddedToken(id)) b.addedToken(new AddedToken(id, e.getKey(), cfg.isSpecialName(e.getKey()), false, false, false));
            }
        }
        // transformers never splits its special tokens, even those already in the vocab.
        List<String> specials = new ArrayList<>(cfg.allSpecialNames());
        if (b.vocab().containsKey("<|endoftext|>") && !specials.contains("<|endoftext|>")) specials.add("<|endoftext|>"); // GPT-2 family
        for (String s : specials) {
            Integer id = b.vocab().get(s);
            if (id != null && !b.hasAddedToken(id)) b.addedToken(AddedToken.special(id, s));
        }
        if (cfg.unk != null && b.vocab().containsKey(cfg.unk)) b.modelUnkToken(cfg.unk);
        Map<String, Integer> known = new HashMap<>(b.vocab());
        for (AddedToken t : b.addedTokens()) known.putIfAbsent(t.content(), t.id());
        return applySpecialNames(b, cfg, known).build();
    }

    static Map<String, Integer> readVocab(JsonNode vocab, Path where) throws IOException {
        if (vocab == null || !vocab.isObject()) throw new IOException(where + ": vocab is not a JSON object");
        Map<String, Integer> out = new HashMap<>(vocab.size() * 2);
        for (var it = vocab.fields(); it.hasNext(); ) {
            var e = it.next();
            if (!e.getValue().canConvertToInt()) throw new IOException(where + ": vocab entry '" + e.getKey() + "' has non-integer id " + e.getValue());
            out.put(e.getKey(), e.getValue().intValue());
        }
        return out;
    }

    static List<String[]> readMergesTxt(Path file) throws IOException {
        List<String[]> merges = new ArrayList<>(50_000);
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int no = 0;
            while ((line = r.readLine()) != null) {
                no++;
                if (no == 1 && line.startsWith("#version")) continue;
                if (line.isEmpty()) continue;
                merges.add(parseMerge(line, file + ":" + no));
            }
        }
        return merges;
    }

    private static String[] parseMerge(String s, String where) throws IOException {
        int sp = s.indexOf(' ');
        if (sp <= 0 || sp == s.length() - 1 || s.indexOf(' ', sp + 1) >= 0)
            throw new IOException(where + ": merge '" + s + "' is not two tokens separated by one space");
        return new String[] {s.substring(0, sp), s.substring(sp + 1)};
    }

    // ---------------------------------------------------------------- tokenizer.json

    /**
     * HF {@code tokenizer.json} with model BPE over byte-level symbols: pre_tokenizer ByteLevel, or
     * a Sequence of Split steps ending in ByteLevel; decoder ByteLevel (or none). Anything else
     * (WordPiece, Unigram, Metaspace, byte_fallback...) is refused with the part named.
     */
    public static ByteLevelBpeTokenizer fromTokenizerJson(Path file) throws IOException {
        JsonNode root = readJson(file);
        JsonNode model = root.path("model");
        String type = str(model, "type", "BPE");
        if (!type.equals("BPE")) throw unsupported(file, "model type " + type + " (only BPE)");
        if (!str(model, "continuing_subword_prefix", "").isEmpty() || !str(model, "end_of_word_suffix", "").isEmpty())
            throw unsupported(file, "BPE continuing_subword_prefix / end_of_word_suffix");
        if (model.path("byte_fallback").asBoolean(false)) throw unsupported(file, "BPE byte_fallback (not a byte-level BPE)");

        Map<String, Integer> vocab = readVocab(model.get("vocab"), file);
        List<String[]> merges = new ArrayList<>();
        JsonNode ms = model.path("merges");
        for (int i = 0; i < ms.size(); i++) {
            JsonNode m = ms.get(i);
            if (m.isTextual()) merges.add(parseMerge(m.asText(), file + " merges[" + i + "]"));
            else if (m.isArray() && m.size() == 2) merges.add(new String[] {m.get(0).asText(), m.get(1).asText()});
            else throw new IOException(file + ": merges[" + i + "] is neither \"a b\" nor [a, b]: " + m);
        }

        ByteLevelBpeTokenizer.Builder b = ByteLevelBpeTokenizer.builder()
                .vocab(vocab)
                .merges(merges)
                .ignoreMerges(model.path("ignore_merges").asBoolean(false))
                .normalizer(normalizer(root.get("normalizer"), file))
                .preTokenizer(preTokenizer(root.get("pre_tokenizer"), file, true));
        String unk = str(model, "unk_token", null);
        if (unk != null) b.modelUnkToken(unk);

        JsonNode decoder = root.get("decoder");
        if (decoder != null && !decoder.isNull() && !decoder.path("type").asText().equals("ByteLevel"))
            throw unsupported(file, "decoder " + decoder.path("type").asText());

        for (JsonNode t : root.path("added_tokens")) {
            b.addedToken(new AddedToken(t.path("id").asInt(), t.path("content").asText(), t.path("special").asBoolean(false),
                    t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false)));
        }
        Map<String, Integer> all = new HashMap<>(vocab);
        for (JsonNode t : root.path("added_tokens")) all.putIfAbsent(t.path("content").asText(), t.path("id").asInt());
        SpecialConfig cfg = SpecialConfig.read(file.toAbsolutePath().getParent());
        if (cfg.unk == null) cfg.unk = unk;
        return applySpecialNames(b, cfg, all).build();
    }

    private static UnaryOperator<String> normalizer(JsonNode n, Path file) throws IOException {
        if (n == null || n.isNull()) return null;
        String type = n.path("type").asText();
        return switch (type) {
            case "NFC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase" -> s -> s.toLowerCase(Locale.ROOT);
            case "Sequence" -> {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                for (JsonNode step : n.path("normalizers")) {
                    UnaryOperator<String> op = normalizer(step, file);
                    if (op != null) steps.add(op);
                }
                yield s -> {
                    for (UnaryOperator<String> op : steps) s = op.apply(s);
                    return s;
                };
            }
            default -> throw unsupported(file, "normalizer " + type);
        };
    }

    private static PreTokenizer preTokenizer(JsonNode n, Path file, boolean top) throws IOException {
        if (n == null || n.isNull()) throw unsupported(file, "no pre_tokenizer (byte-level BPE needs ByteLevel)");
        String type = n.path("type").asText();
        if (!top && !type.equals("Split")) throw unsupported(file, "pre_tokenizer " + type + " before ByteLevel in a Sequence");
        return switch (type) {
            case "ByteLevel" -> new PreTokenizer.ByteLevel(n.path("add_prefix_space").asBoolean(false), n.path("use_regex").asBoolean(true));
            case "Split" -> {
                if (top) throw unsupported(file, "Split without a following ByteLevel (not byte-level)");
                JsonNode p = n.path("pattern");
                String regex;
                if (p.has("Regex")) regex = p.get("Regex").asText();
                else if (p.has("String")) regex = java.util.regex.Pattern.quote(p.get("String").asText());
                else throw new IOException(file + ": Split pattern is neither {Regex} nor {String}: " + p);
                yield new PreTokenizer.Split(PreTokenizer.compile(regex),
                        PreTokenizer.Behavior.parse(n.path("behavior").asText("Isolated")), n.path("invert").asBoolean(false));
            }
            case "Sequence" -> {
                JsonNode steps = n.path("pretokenizers");
                if (steps.isEmpty() || !steps.get(steps.size() - 1).path("type").asText().equals("ByteLevel"))
                    throw unsupported(file, "pre_tokenizer Sequence not ending in ByteLevel");
                List<PreTokenizer> list = new ArrayList<>();
                for (int i = 0; i < steps.size(); i++) list.add(preTokenizer(steps.get(i), file, i == steps.size() - 1));
                yield new PreTokenizer.Sequence(list);
            }
            default -> throw unsupported(file, "pre_tokenizer " + type);
        };
    }

    // ---------------------------------------------------------------- special tokens

    private static ByteLevelBpeTokenizer.Builder applySpecialNames(ByteLevelBpeTokenizer.Builder b, SpecialConfig cfg, Map<String, Integer> known) {
        b.bosToken(pick(cfg.bos, cfg.hasBos, known, "<|endoftext|>", "<s>", "<|begin_of_text|>"));
        b.eosToken(pick(cfg.eos, cfg.hasEos, known, "<|endoftext|>", "</s>", "<|end_of_text|>"));
        b.padToken(pick(cfg.pad, cfg.hasPad, known, "<pad>", "<|pad|>"));
        b.unkToken(pick(cfg.unk, cfg.unk != null, known, "<unk>"));
        return b;
    }

    private static String pick(String configured, boolean configuredKey, Map<String, Integer> known, String... usual) {
        if (configuredKey) return configured != null && known.containsKey(configured) ? configured : null;
        for (String u : usual) if (known.containsKey(u)) return u;
        return null;
    }

    /** What tokenizer_config.json and special_tokens_map.json say about special tokens. */
    private static final class SpecialConfig {
        boolean hasBos, hasEos, hasPad;
        String bos, eos, pad, unk;
        final List<String> additional = new ArrayList<>();
        final List<AddedToken> addedTokens = new ArrayList<>();

        static SpecialConfig read(Path dir) throws IOException {
            SpecialConfig c = new SpecialConfig();
            if (dir == null) return c;
            for (String name : List.of("tokenizer_config.json", "special_tokens_map.json")) { // later file wins
                Path p = dir.resolve(name);
                if (!Files.isRegularFile(p)) continue;
                JsonNode root = readJson(p);
                if (root.has("bos_token")) { c.hasBos = true; c.bos = tokenName(root.get("bos_token")); }
                if (root.has("eos_token")) { c.hasEos = true; c.eos = tokenName(root.get("eos_token")); }
                if (root.has("pad_token")) { c.hasPad = true; c.pad = tokenName(root.get("pad_token")); }
                if (root.has("unk_token")) c.unk = tokenName(root.get("unk_token"));
                for (JsonNode a : root.path("additional_special_tokens")) {
                    String s = tokenName(a);
                    if (s != null && !c.additional.contains(s)) c.additional.add(s);
                }
                for (var it = root.path("added_tokens_decoder").fields(); it.hasNext(); ) {
                    var e = it.next();
                    JsonNode t = e.getValue();
                    c.addedTokens.add(new AddedToken(Integer.parseInt(e.getKey()), t.path("content").asText(), t.path("special").asBoolean(false),
                            t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false)));
                }
            }
            return c;
        }

        List<String> allSpecialNames() {
            List<String> out = new ArrayList<>();
            for (String s : new String[] {bos, eos, unk, pad}) if (s != null && !out.contains(s)) out.add(s);
            for (String s : additional) if (!out.contains(s)) out.add(s);
            return out;
        }

        boolean isSpecialName(String s) {
            return allSpecialNames().contains(s);
        }

        private static String tokenName(JsonNode n) {
            if (n == null || n.isNull()) return null;
            if (n.isTextual()) return n.asText();
            JsonNode c = n.get("content");
            return c == null || c.isNull() ? null : c.asText();
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A string field; {@code dflt} when missing or JSON null. */
    private static String str(JsonNode n, String field, String dflt) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    private static JsonNode readJson(Path p) throws IOException {
        try {
            return JSON.readTree(p.toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IOException(p + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static IOException unsupported(Path file, String what) {
        return new IOException(file + ": unsupported tokenizer part: " + what);
    }
}
