package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The playground at the gateway's {@code /}, driven in headless Chromium (Debian's chromium and
 * chromium-driver, which .ci/run installs) against a mesh this test starts with an API key: the key goes in
 * its field, a prompt is typed, streamed text appears, and a repeat of the same prompt reports cached
 * tokens; the mesh view lists both decode replicas. Its screenshots are the README's (docs/images/, refreshed
 * with -Dgoldfinch.screenshots.write=true).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PlaygroundBrowserTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final String KEY = "sk-playground-0123456789abcdef";
    // Long enough to span whole key blocks (64 tokens), so the repeat finds a checkpoint.
    static final String PROMPT = "Tell me about the goldfinch: a small bird with a red face, a black and white head, "
            + "golden wing bars and a liquid twittering song. Where does it live, what does it eat in winter, "
            + "how does it build its nest, and why do people in cities see more of them at feeders each year? "
            + "Answer in two short paragraphs.";

    MeshLauncher mesh;
    WebDriver browser;
    String base;

    @BeforeAll
    void start() throws Exception {
        assumeTrue(
                Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
                "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver; .ci/run does)");
        Path keys = Files.createTempFile("playground-keys", ".txt");
        Files.writeString(keys, "playground " + KEY + "\n");
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null,
                null,
                2,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                keys,
                Map.of("logging.level.root", "WARN")));
        base = "http://127.0.0.1:" + mesh.httpPort("gateway");
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        // As root in a container, without a GPU, and without the background traffic a closed network refuses.
        options.addArguments(
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,800");
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort()
                .build();
        browser = new ChromeDriver(service, options);
    }

    @AfterAll
    void stop() {
        if (browser != null) {
            browser.quit();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    WebDriverWait waiting(int seconds) {
        return new WebDriverWait(browser, Duration.ofSeconds(seconds));
    }

    /** Sends the prompt alone (no history) and waits for the stream to end; returns the streamed reply. */
    String ask(String prompt) {
        browser.findElement(By.id("prompt")).sendKeys(prompt);
        int before =
                browser.findElements(By.cssSelector(".turn.assistant .text")).size();
        browser.findElement(By.id("send")).click();
        waiting(120)
                .until(d ->
                        d.findElements(By.cssSelector(".turn.assistant .text")).size() > before
                                && d.findElements(By.id("streaming")).isEmpty()
                                && d.findElement(By.id("send")).isEnabled());
        List<WebElement> replies = browser.findElements(By.cssSelector(".turn .text"));
        return replies.getLast().getText();
    }

    @Test
    void chatStreamsAndARepeatIsServedFromTheCache() throws Exception {
        browser.get(base + "/");
        assertEquals("GoldFinch Mesh playground", browser.getTitle());
        browser.findElement(By.id("api-key")).sendKeys(KEY);
        browser.findElement(By.id("keep-history")).click(); // each prompt alone, so the repeat is identical
        browser.findElement(By.id("seed")).sendKeys("5");

        String first = ask(PROMPT);
        assertFalse(first.isBlank(), "streamed text appeared");
        assertTrue(browser.findElements(By.cssSelector(".turn.error")).isEmpty(), "no error turn");
        assertTrue(Integer.parseInt(browser.findElement(By.id("fig-prompt")).getText()) > 64);
        assertTrue(Integer.parseInt(browser.findElement(By.id("fig-completion")).getText()) > 0);
        assertTrue(browser.findElement(By.id("fig-ttft")).getText().endsWith(" ms"));

        ask(PROMPT);
        int cached = Integer.parseInt(browser.findElement(By.id("fig-cached")).getText());
        assertTrue(cached > 0, "the repeat reads its prefix from the cache: " + cached);
        screenshot("playground-chat.png");

        browser.findElement(By.id("tab-mesh")).click();
        waiting(20)
                .until(d ->
                        d.findElements(By.cssSelector("#replicas tr.replica")).size() == 2);
        waiting(20).until(d -> !d.findElement(By.id("m-bytes")).getText().equals("–"));
        assertTrue(browser.findElement(By.id("m-hit")).getText().endsWith("%"));
        assertEquals("", browser.findElement(By.id("mesh-error")).getText());
        screenshot("playground-mesh.png");
    }

    @Test
    void aWrongKeyIsShownAsTheGatewaysError() {
        browser.get(base + "/");
        browser.findElement(By.id("api-key")).sendKeys("sk-wrong");
        browser.findElement(By.id("prompt")).sendKeys("hello");
        browser.findElement(By.id("send")).click();
        waiting(30).until(d -> !d.findElements(By.cssSelector(".turn.error")).isEmpty());
        String error = browser.findElement(By.cssSelector(".turn.error .text")).getText();
        assertTrue(error.toLowerCase(java.util.Locale.ROOT).contains("api key"), error);
        assertFalse(error.contains("sk-wrong"), "the key is never echoed");
    }

    private void screenshot(String name) throws Exception {
        Path shot = ((TakesScreenshot) browser).getScreenshotAs(OutputType.FILE).toPath();
        Path target = Path.of("target", "screenshots", name);
        Files.createDirectories(target.getParent());
        Files.copy(shot, target, StandardCopyOption.REPLACE_EXISTING);
        if (Boolean.getBoolean("goldfinch.screenshots.write")) {
            Path docs = DockerComposeConfigTest.projectFile("docs/images").resolve(name);
            Files.createDirectories(docs.getParent());
            Files.copy(shot, docs, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
