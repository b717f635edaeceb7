package dev.qlora4j.runtime.checkpoint;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Paths of the committed fixtures (made by runtime/src/test/python/make_bin_fixtures.py) and the shared models. */
final class Fixtures {
    private Fixtures() {
    }

    static Path resource(String name) {
        URL url = Fixtures.class.getResource("/checkpoint/" + name);
        if (url == null) throw new IllegalStateException("missing test resource checkpoint/" + name
                + " (run runtime/src/test/python/make_bin_fixtures.py)");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** ../shared/data/tiny-gpt2; the test is skipped when the shared directory is absent. */
    static Path tinyGpt2() {
        String shared = System.getProperty("qlora.shared", "../shared");
        Path dir = Path.of(shared, "data", "tiny-gpt2");
        assumeTrue(Files.isDirectory(dir), "shared model " + dir + " not present");
        return dir;
    }
}
