/**
 * Byte-level BPE tokenizers (GPT-2, BLOOM) that reproduce Hugging Face {@code tokenizers} ids.
 *
 * <p>Pipeline of {@link dev.qlora4j.runtime.tokenizer.ByteLevelBpeTokenizer#encode(String)}:
 * added/special tokens are cut out of the raw text ({@code AddedTokenMatcher}, leftmost-longest)
 * → optional normalizer → {@link dev.qlora4j.runtime.tokenizer.PreTokenizer} words (GPT-2 regex,
 * or BLOOM's Split + ByteLevel) → each word's UTF-8 bytes as byte-level symbols
 * ({@link dev.qlora4j.runtime.tokenizer.ByteLevelAlphabet}) → merges by rank ({@code BpeMerges}),
 * with a bounded word cache. Decoding concatenates each id's exact bytes.
 *
 * <p>Regexes from tokenizer files are compiled with {@code UNICODE_CHARACTER_CLASS} so that
 * {@code \s} is Unicode White_Space, as in Oniguruma / Python {@code regex}; Java's regex engine
 * works on code points, so emoji are single characters to the pattern.
 * {@link dev.qlora4j.runtime.tokenizer.Tokenizers} picks the files of a model directory.
 */
package dev.qlora4j.runtime.tokenizer;
