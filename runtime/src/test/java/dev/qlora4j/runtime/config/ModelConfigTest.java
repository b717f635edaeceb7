package dev.qlora4j.runtime.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class ModelConfigTest {

    @Test
    void readsTinyGpt2Config() {
        Path file = Path.of(System.getProperty("qlora.shared", "../shared"), "data", "tiny-gpt2", "config.json");
        assumeTrue(Files.isRegularFile(file));
        Gpt2Config c = assertInstanceOf(Gpt2Config.class, ModelConfig.load(file));
        assertEquals("gpt2", c.modelType());
        assertEquals(2, c.hiddenSize());
        assertEquals(2, c.numHeads());
        assertEquals(1, c.headSize());
        assertEquals(2, c.numLayers());
        assertEquals(1024, c.maxPositions());
        assertEquals(50257, c.vocabSize());
        assertEquals(8, c.intermediateSize(), "n_inner null → 4C");
        assertEquals(1e-5, c.layerNormEpsilon());
        assertEquals("gelu_new", c.activation());
        assertEquals(0.1, c.attnPdrop());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(OptionalInt.of(50256), c.bosTokenId());
        assertEquals(List.of(50256), c.eosTokenIds());
        assertEquals("float32", c.torchDtype());
    }

    @Test
    void gpt2DefaultsAndAliases() {
        Gpt2Config c = (Gpt2Config) ModelConfig.parse("""
                {"model_type": "gpt2", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 3,
                 "vocab_size": 17, "max_position_embeddings": 32, "n_inner": 20, "tie_word_embeddings": false,
                 "eos_token_id": [5, 6]}""", "cfg");
        assertEquals(8, c.hiddenSize());
        assertEquals(2, c.numHeads());
        assertEquals(3, c.numLayers());
        assertEquals(32, c.maxPositions());
        assertEquals(20, c.intermediateSize());
        assertEquals(1e-5, c.layerNormEpsilon());
        assertEquals("gelu_new", c.activation());
        assertEquals(0.1, c.residPdrop());
        assertTrue(c.scaleAttnWeights());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(List.of(5, 6), c.eosTokenIds());
        assertEquals(OptionalInt.empty(), c.padTokenId());
        assertNull(c.torchDtype());
    }

    @Test
    void bloomDefaultsAndAliases() {
        BloomConfig c = (BloomConfig) ModelConfig.parse("""
                {"model_type": "bloom", "n_embed": 64, "num_attention_heads": 8, "n_layer": 2, "vocab_size": 250880,
                 "layer_norm_epsilon": 1e-5, "pad_token_id": 3, "apply_residual_connection_post_layernorm": false,
                 "hidden_dropout": 0.0, "attention_dropout": 0.0, "n_inner": null, "unk_token_id": 0}""", "bloom.json");
        assertEquals("bloom", c.modelType());
        assertEquals(64, c.hiddenSize());
        assertEquals(8, c.numHeads());
        assertEquals(8, c.headSize());
        assertEquals(2, c.numLayers());
        assertEquals(256, c.intermediateSize());
        assertFalse(c.applyResidualConnectionPostLayernorm());
        assertEquals(OptionalInt.of(1), c.bosTokenId());
        assertEquals(List.of(2), c.eosTokenIds());
        assertEquals(OptionalInt.of(3), c.padTokenId());
        assertEquals(1, c.pretrainingTp());
        assertTrue(c.tieWordEmbeddings());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"model_type\": \"llama\", \"hidden_size\": 8}                           | unsupported model_type 'llama'",
            "{\"n_embd\": 8}                                                          | field 'model_type' is missing",
            "{\"model_type\": 7}                                                      | field 'model_type' must be a string",
            "{\"model_type\": \"gpt2\", \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9} | field 'n_embd' (or 'hidden_size') is missing",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": \"two\", \"n_layer\": 1, \"vocab_size\": 9} | field 'n_head' (or 'num_attention_heads') must be an integer",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 3, \"n_layer\": 1, \"vocab_size\": 9} | field 'n_head' (3) must divide the hidden size 8",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 0, \"vocab_size\": 9} | field 'n_layer' (or 'num_hidden_layers') must be positive",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9.5} | field 'vocab_size' must be an integer",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"hidden_size\": 16, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9} | fields 'n_embd' (8) and 'hidden_size' (16) are aliases but disagree",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9, \"attn_pdrop\": 2} | field 'attn_pdrop' must be in [0, 1]",
            "{\"model_type\": \"gpt2\", \"n_embd\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9, \"tie_word_embeddings\": \"yes\"} | field 'tie_word_embeddings' must be true or false",
            "{\"model_type\": \"bloom\", \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9} | field 'hidden_size' (or 'n_embed') is missing",
            "{\"model_type\": \"bloom\", \"hidden_size\": 8, \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": 9, \"layer_norm_epsilon\": 0} | field 'layer_norm_epsilon' must be positive",
            "[1, 2]                                                                   | not a JSON object",
            "{\"model_type\": \"gpt2\",                                                 | not valid JSON",
            "{\"model_type\": \"gpt2\", \"model_type\": \"bloom\"}                       | not valid JSON"})
    void errorsNameFileAndField(String json, String message) {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.parse(json, "some/config.json"));
        assertTrue(e.getMessage().startsWith("some/config.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void missingFileIsNamed() {
        Path file = Path.of("no/such/config.json");
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.load(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("does not exist"),
                e.getMessage());
    }

    @Test
    void generationConfigIsTolerantOfMissingFields() {
        GenerationConfig d = GenerationConfig.parse("{}", "g.json");
        assertEquals(GenerationConfig.defaults(), d);
        assertEquals(20, d.maxLength());
        assertEquals(50, d.topK());
        assertFalse(d.doSample());
        GenerationConfig g = GenerationConfig.parse("""
                {"max_length": 50, "do_sample": true, "temperature": 0.7, "top_k": 0, "top_p": 0.9,
                 "repetition_penalty": 1.2, "eos_token_id": [1, 2], "bos_token_id": 1, "pad_token_id": null,
                 "max_new_tokens": 16, "num_beams": 1, "transformers_version": "4.52.3"}""", "g.json");
        assertEquals(50, g.maxLength());
        assertEquals(OptionalInt.of(16), g.maxNewTokens());
        assertTrue(g.doSample());
        assertEquals(0.7, g.temperature());
        assertEquals(0, g.topK());
        assertEquals(0.9, g.topP());
        assertEquals(1.2, g.repetitionPenalty());
        assertEquals(List.of(1, 2), g.eosTokenIds());
        assertEquals(OptionalInt.of(1), g.bosTokenId());
        assertEquals(OptionalInt.empty(), g.padTokenId());
        ConfigException e = assertThrows(ConfigException.class,
                () -> GenerationConfig.parse("{\"top_p\": \"high\"}", "g.json"));
        assertTrue(e.getMessage().contains("g.json") && e.getMessage().contains("'top_p'"), e.getMessage());
    }
}
