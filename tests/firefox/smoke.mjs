// The page in Firefox: key, a streamed answer, a citation opening its page highlighted, an eval
// report. Driven by puppeteer-core over WebDriver BiDi (no geckodriver, no browser download);
// tests/test_ui.py runs it against its server and reads the JSON it prints.
//   node smoke.mjs URL KEY QUESTION SCREENSHOT_DIR
import puppeteer from "puppeteer-core";

const [url, key, question, shots] = process.argv.slice(2);
const seen = {};
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.RAG_FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.setDefaultTimeout(240_000);
  await page.goto(`${url}/`);
  await page.waitForSelector("#key-dialog[open]");
  await page.type("#key-input", key);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("collection").options.length > 0);
  seen.collection = await page.$eval("#collection", (select) => select.options[0].text);

  await page.type("#question", question);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".message.assistant.streaming.has-tokens");
  seen.tokensWhileStreaming = true;
  await page.waitForSelector(".message.assistant.has-tokens:not(.streaming)");
  seen.answer = await page.$eval(".message.assistant .text", (e) => e.innerText);
  await page.click(".message.assistant a.cite");
  await page.waitForSelector("#highlights .highlight");
  seen.viewer = await page.$eval("#viewer-label", (e) => e.textContent);
  seen.imageWidth = await page.$eval("#viewer-image", (e) => e.naturalWidth);
  await page.screenshot({ path: `${shots}/firefox-citation.png` });

  await page.goto(`${url}/#runs`);
  await page.waitForSelector("#run-list a.run");
  await page.click("#run-list a.run");
  await page.waitForSelector("#report[data-ready] img");
  seen.plotWidth = await page.$eval("#report img", (e) => e.naturalWidth);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
