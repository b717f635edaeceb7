package dev.qlora4j.runtime.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * Byte-level BPE (GPT-2, BLOOM, RoBERTa...): added tokens are split out of the raw text, the rest
 * is normalized (usually not), pre-tokenized into words, each word's UTF-8 bytes become byte-level
 * symbols, and merges are applied by rank. Decoding maps every token back to its exact bytes.
 *
 * <p>Build one with {@link #builder()} or load one with {@link Tokenizers}.
 */
public final class ByteLevelBpeTokenizer implements Tokenizer {

    /** Words cached (HF uses 10,000 and stops inserting when full; so do we). */
    static final int CACHE_CAPACITY = 65_536;
    /** Longer words are not cached (runs of whitespace or digits-free gibberish). */
    private static final int CACHE_MAX_WORD = 256;

    private final Map<String, Integer> tokenToId;
    private final String[] idToToken;   // (V) stored form, null for holes
    private final byte[][] idToBytes;   // (V) exact bytes each id decodes to
    private final boolean[] special;    // (V)
    private final int[] byteToId = new int[256]; // byte → id of its single-symbol token, -1 if absent
    private final BpeMerges merges;
    private final PreTokenizer preTokenizer;
    private final UnaryOperator<String> normalizer; // null: none
    private final AddedTokenMatcher added;
    private final boolean ignoreMerges;
    private final int bpeUnk;               // what BPE emits for a symbol missing from the vocab; -1: drop it
    private final int unk, eos, bos, pad;   // -1 where unknown
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    private ByteLevelBpeTokenizer(Builder b) {
        Map<String, Integer> vocab = Objects.requireNonNull(b.vocab, "vocab");
        int maxId = -1;
        for (int id : vocab.values()) maxId = Math.max(maxId, id);
        for (AddedToken t : b.added) maxId = Math.max(maxId, t.id());
        int v = maxId + 1;
        tokenToId = new HashMap<>(vocab);
        idToToken = new String[v];
        idToBytes = new byte[v][];
        special = new boolean[v];
        for (var e : vocab.entrySet()) {
            if (e.getValue() < 0) throw new IllegalArgumentException("token '" + e.getKey() + "' has negative id");
            idToToken[e.getValue()] = e.getKey();
            idToBytes[e.getValue()] = byteLevelToBytes(e.getKey());
        }
        for (AddedToken t : b.added) {
            idToToken[t.id()] = t.content();
            idToBytes[t.id()] = t.content().getBytes(StandardCharsets.UTF_8);
            special[t.id()] = t.special();
            tokenToId.putIfAbsent(t.content(), t.id());
        }
        Arrays.fill(byteToId, -1);
        for (int by = 0; by < 256; by++) {
            Integer id = vocab.get(String.valueOf(ByteLevelAlphabet.byteToChar(by)));
            if (id != null) byteToId[by] = id;
        }
        merges = new BpeMerges(b.merges, vocab);
        preTokenizer = Objects.requireNonNull(b.preTokenizer, "preTokenizer");
        normalizer = b.normalizer;
        added = new AddedTokenMatcher(b.added);
        ignoreMerges = b.ignoreMerges;
        bpeUnk = idOf(b.modelUnkToken);
        unk = b.unkToken != null ? idOf(b.unkToken) : bpeUnk;
        eos = idOf(b.eosToken);
        bos = idOf(b.bosToken);
        pad = idOf(b.padToken);
    }

    private int idOf(String token) {
        if (token == null) return -1;
        Integer id = tokenToId.get(token);
        if (id == null) throw new IllegalArgumentException("special token '" + token + "' is neither in the vocab nor an added token");
        return id;
    }

    private static byte[] byteLevelToBytes(String token) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
        for (int i = 0; i < token.length(); ) {
            int cp = token.codePointAt(i);
            int b = ByteLevelAlphabet.charToByte(cp);
            if (b >= 0) out.write(b);
            else out.writeBytes(Character.toString(cp).getBytes(StandardCharsets.UTF_8)); // not byte-level: as text
            i += Character.charCount(cp);
        }
        return out.toByteArray();
    }

    // ---------------------------------------------------------------- encode

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        IntBuffer out = new IntBuffer(Math.max(16, text.length() / 3));
        added.split(text, parseSpecial, new AddedTokenMatcher.Sink() {
            @Override
            public void text(String t, int start, int end) {
                encodePlain(t.substring(start, end), true, out);
            }

            @Override
            public void token(AddedToken token) {
                out.add(token.id());
            }
        });
        return out.toArray();
    }

    private void encodePlain(String text, boolean normalize, IntBuffer out) {
        if (normalize && normalizer != null) text = normalizer.apply(text);
        List<String> words = new ArrayList<>();
        preTokenizer.split(text, words);
        for (String w : words) encodeWord(w, out);
    }

    private void encodeWord(String word, IntBuffer out) {
        int[] ids = cache.get(word);
        if (ids == null) {
            byte[] utf8 = Utf8.encode(word);
            ids = bpe(utf8, 0, utf8.length);
            if (word.length() <= CACHE_MAX_WORD && cache.size() < CACHE_CAPACITY) cache.put(word, ids);
        }
        out.addAll(ids);
    }

    /** BPE over the byte-level symbols of {@code bytes[off, off+len)}. */
    private int[] bpe(byte[] bytes, int off, int len) {
        if (ignoreMerges) {
            Integer whole = tokenToId.get(ByteLevelAlphabet.toByteLevel(bytes, off, len));
            if (whole != null) return new int[] {whole};
        }
        int[] ids = new int[len];
        int n = 0;
        for (int i = 0; i < len; i++) {
            int id = byteToId[bytes[off + i] & 0xFF];
            if (id < 0) id = bpeUnk; // HF: unknown symbol → unk token, or dropped when there is none
            if (id >= 0) ids[n++] = id;
        }
        return merges.apply(ids, n);
    }

    @Override
    public int[] encodeBytes(byte[] bytes) {
        IntBuffer out = new IntBuffer(Math.max(16, bytes.length / 3));
        int i = 0, n = bytes.length;
        while (i < n) {
            int valid = Utf8.validPrefix(bytes, i, n); // end of the longest well-formed stretch from i
            if (valid > i) {
                // Well-formed UTF-8 round-trips through String exactly, so words re-encode to these bytes.
                // The normalizer is skipped here: exact bytes in, exact bytes out.
                encodePlain(new String(bytes, i, valid - i, StandardCharsets.UTF_8), false, out);
                i = valid;
            } else {
                int bad = i + 1; // a run of bytes that start no well-formed sequence: one word
                while (bad < n && Utf8.validPrefix(bytes, bad, n) == bad) bad++;
                out.addAll(bpe(bytes, i, bad - i));
                i = bad;
            }
        }
        return out.toArray();
    }

    // ---------------------------------------------------------------- decode

    @Override
    public String decode(int[] ids, boolean skipSpecial) {
        return new String(decodeBytes(ids, skipSpecial), StandardCharsets.UTF_8);
    }

    @Override
    public byte[] decodeBytes(int[] ids, boolean skipSpecial) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) {
            if (id < 0 || id >= idToBytes.length || idToBytes[id] == null)
                throw new IllegalArgumentException("unknown token id " + id + " (vocab size " + idToBytes.length + ")");
            if (skipSpecial && special[id]) continue;
            out.writeBytes(idToBytes[id]);
        }
        return out.toByteArray();
    }

    // ---------------------------------------------------------------- vocabulary

    @Override
    public int vocabSize() {
        return idToToken.length;
    }

    @Override
    public OptionalInt tokenToId(String token) {
        Integer id = tokenToId.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public String idToToken(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    @Override
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    @Override
    public OptionalInt eosId() {
        return opt(eos);
    }

    @Override
    public OptionalInt bosId() {
        return opt(bos);
    }

    @Override
    public OptionalInt padId() {
        return opt(pad);
    }

    @Override
    public OptionalInt unkId() {
        return opt(unk);
    }

    private static OptionalInt opt(int id) {
        return id < 0 ? OptionalInt.empty() : OptionalInt.of(id);
    }

    int mergeCount() {
        return merges.size();
    }

    @Override
    public String toString() {
        return "ByteLevelBpeTokenizer[vocab=" + vocabSize() + ", merges=" + merges.size() + ", pre=" + preTokenizer + "]";
    }

    // ---------------------------------------------------------------- builder

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private Map<String, Integer> vocab;
        private List<String[]> merges = List.of();
        private final Map<Integer, AddedToken> addedById = new LinkedHashMap<>();
        private List<AddedToken> added = List.of();
        private PreTokenizer preTokenizer = new PreTokenizer.ByteLevel(false, true);
        private UnaryOperator<String> normalizer;
        private boolean ignoreMerges;
        private String modelUnkToken, unkToken, eosToken, bosToken, padToken;

        private Builder() {}

        /** Token (byte-level form, e.g. "Ġthe") → id. */
        public Builder vocab(Map<String, Integer> vocab) {
            this.vocab = vocab;
            return this;
        }

        /** Merges in rank order, each {left, right}. */
        public Builder merges(List<String[]> merges) {
            this.merges = merges;
            return this;
        }

        /** Adds (or, for an id already given, replaces) an added token. */
        public Builder addedToken(AddedToken t) {
            addedById.put(t.id(), t);
            added = List.copyOf(addedById.values());
            return this;
        }

        public boolean hasAddedToken(int id) {
            return addedById.containsKey(id);
        }

        public Builder preTokenizer(PreTokenizer p) {
            this.preTokenizer = p;
            return this;
        }

        public Builder normalizer(UnaryOperator<String> n) {
            this.normalizer = n;
            return this;
        }

        /** HF BPE {@code ignore_merges}: a word that is itself in the vocab is not merged piecewise. */
        public Builder ignoreMerges(boolean b) {
            this.ignoreMerges = b;
            return this;
        }

        /** The BPE model's unk token: emitted for a byte with no symbol in the vocab (else the byte is dropped, as HF does). */
        public Builder modelUnkToken(String t) {
            this.modelUnkToken = t;
            return this;
        }

        /** The reported unk token (defaults to the model's). */
        public Builder unkToken(String t) {
            this.unkToken = t;
            return this;
        }

        public Builder eosToken(String t) {
            this.eosToken = t;
            return this;
        }

        public Builder bosToken(String t) {
            this.bosToken = t;
            return this;
        }

        public Builder padToken(String t) {
            this.padToken = t;
            return this;
        }

        Map<String, Integer> vocab() {
            return vocab;
        }

        List<AddedToken> addedTokens() {
            return added;
        }

        public ByteLevelBpeTokenizer build() {
            return new ByteLevelBpeTokenizer(this);
        }
    }

    /** Growable int array for the encode output. */
    private static final class IntBuffer {
        private int[] a;
        private int n;

        IntBuffer(int cap) {
            a = new int[cap];
        }

        void add(int v) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            a[n++] = v;
        }

        void addAll(int[] vs) {
            if (n + vs.length > a.length) a = Arrays.copyOf(a, Math.max(n * 2, n + vs.length));
            System.arraycopy(vs, 0, a, n, vs.length);
            n += vs.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
