import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblems, loadConfig, resolveLogFormat } from '../src/config.ts';

const SECRET_TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.secret.discord-token';
const SECRET_KEY = 'sk_live_super_secret_api_key';
const valid = { DISCORD_TOKEN: SECRET_TOKEN, PPINFRA_API_KEY: SECRET_KEY };

describe('loadConfig', () => {
  it('applies documented defaults', () => {
    const result = loadConfig(valid);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.ppinfra.baseUrl).toBe('https://api.ppinfra.com');
    expect(result.config.storageUrl).toBe('sqlite://./data/qwen-imagine.sqlite');
    expect(result.config.discordApiUrl).toBeUndefined();
    expect(result.config.log).toEqual({ level: 'info', format: 'json' });
    expect(result.config.generation.defaultSize).toBe('1024*1024');
    expect(Object.isFrozen(result.config)).toBe(true);
  });

  it('reports every problem at once, naming each variable', () => {
    const result = loadConfig({
      PPINFRA_BASE_URL: 'ftp://example',
      STORAGE_URL: 'mysql://x',
      REVIEW_CHANNEL_ID: 'general',
      LOG_LEVEL: 'loud',
      USER_HOURLY_QUOTA: 'many',
      MAX_JOBS_IN_FLIGHT: '0',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const vars = result.problems.map((p) => p.split(' ')[0]);
    expect(vars).toEqual(
      expect.arrayContaining([
        'DISCORD_TOKEN',
        'PPINFRA_API_KEY',
        'PPINFRA_BASE_URL',
        'STORAGE_URL',
        'REVIEW_CHANNEL_ID',
        'LOG_LEVEL',
        'USER_HOURLY_QUOTA',
        'MAX_JOBS_IN_FLIGHT',
      ]),
    );
  });

  it('reads the classifier’s thresholds, 0.6 and 0.8 by default, and refuses one that is no probability', () => {
    expect(loadConfig(valid)).toMatchObject({ ok: true, config: { nsfwThresholds: { porn: 0.6, sexy: 0.8 } } });
    expect(loadConfig({ ...valid, NSFW_THRESHOLD_PORN: '0.7', NSFW_THRESHOLD_SEXY: '1' })).toMatchObject({
      ok: true,
      config: { nsfwThresholds: { porn: 0.7, sexy: 1 } },
    });
    expect(loadConfig({ ...valid, NSFW_THRESHOLD_PORN: '60', NSFW_THRESHOLD_SEXY: '0' })).toEqual({
      ok: false,
      problems: [
        'NSFW_THRESHOLD_PORN must be a number from 0.01 to 1, such as 0.6',
        'NSFW_THRESHOLD_SEXY must be a number from 0.01 to 1, such as 0.6',
      ],
    });
    expect(loadConfig({ ...valid, NSFW_THRESHOLD_SEXY: 'high' })).toMatchObject({
      ok: false,
      problems: ['NSFW_THRESHOLD_SEXY must be a number from 0.01 to 1, such as 0.6'],
    });
  });

  it('caps the held images per member and per guild, 5 and 50 unless the operator says otherwise', () => {
    expect(loadConfig(valid)).toMatchObject({ ok: true, config: { review: { heldPerMember: 5, heldPerGuild: 50 } } });
    expect(loadConfig({ ...valid, HELD_PER_MEMBER: '2', HELD_PER_GUILD: '10' })).toMatchObject({
      ok: true,
      config: { review: { heldPerMember: 2, heldPerGuild: 10 } },
    });
    const wrong = loadConfig({ ...valid, HELD_PER_MEMBER: '0', HELD_PER_GUILD: 'lots' });
    expect(wrong.ok).toBe(false);
    if (wrong.ok) return;
    expect(wrong.problems).toEqual(['HELD_PER_GUILD must be a whole number', 'HELD_PER_MEMBER must be at least 1']);
  });

  it('treats empty and blank values as unset', () => {
    const result = loadConfig({ ...valid, DISCORD_API_URL: '', LOG_LEVEL: '   ', STORAGE_URL: '' });
    expect(result).toMatchObject({
      ok: true,
      config: { discordApiUrl: undefined, log: { level: 'info' }, storageUrl: 'sqlite://./data/qwen-imagine.sqlite' },
    });
  });

  it('never echoes a value in its report, secrets included', () => {
    const result = loadConfig({
      DISCORD_TOKEN: SECRET_TOKEN,
      PPINFRA_API_KEY: SECRET_KEY,
      PPINFRA_BASE_URL: SECRET_KEY,
      DISCORD_GUILD_ID: SECRET_TOKEN,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const report = formatProblems(result.problems);
    expect(report).toContain('PPINFRA_BASE_URL');
    expect(report).toContain('DISCORD_GUILD_ID');
    expect(report).not.toContain(SECRET_KEY);
    expect(report).not.toContain(SECRET_TOKEN);
  });

  it.each([
    'sqlite://./data/x.sqlite',
    'sqlite:///var/lib/qwen/x.sqlite',
    'redis://127.0.0.1:6379',
    'rediss://user:pw@host:6380/2',
  ])('accepts STORAGE_URL %s', (url) => {
    expect(loadConfig({ ...valid, STORAGE_URL: url }).ok).toBe(true);
  });

  it('does not require DISCORD_TOKEN for the CLI generator', () => {
    expect(loadConfig({ PPINFRA_API_KEY: SECRET_KEY }, { discord: false, ppinfra: true }).ok).toBe(true);
    expect(loadConfig({ PPINFRA_API_KEY: SECRET_KEY }).ok).toBe(false);
  });

  it('rejects an inconsistent poll range', () => {
    expect(loadConfig({ ...valid, POLL_MIN_INTERVAL_MS: '5000', POLL_MAX_INTERVAL_MS: '1000' })).toEqual({
      ok: false,
      problems: ['POLL_MAX_INTERVAL_MS must be at least POLL_MIN_INTERVAL_MS'],
    });
  });

  describe('REPORTS_PER_HOUR (member reports)', () => {
    it('lets a member send 10 reports an hour by default, or what the operator sets', () => {
      expect(loadConfig(valid)).toMatchObject({ ok: true, config: { reports: { perHour: 10 } } });
      expect(loadConfig({ ...valid, REPORTS_PER_HOUR: ' 3 ' })).toMatchObject({
        ok: true,
        config: { reports: { perHour: 3 } },
      });
      expect(loadConfig({ ...valid, REPORTS_PER_HOUR: '' })).toMatchObject({
        ok: true,
        config: { reports: { perHour: 10 } },
      });
    });

    it.each(['0', '-1', '2.5', 'many', '1001'])('refuses REPORTS_PER_HOUR=%s, naming it', (value) => {
      const result = loadConfig({ ...valid, REPORTS_PER_HOUR: value });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems).toEqual([expect.stringMatching(/^REPORTS_PER_HOUR must be/)]);
    });
  });

  describe('METRICS_PORT and METRICS_HOST (health and metrics endpoint)', () => {
    it('is off by default, on 127.0.0.1 when only a port is given', () => {
      expect(loadConfig(valid)).toMatchObject({ ok: true, config: { ops: undefined } });
      expect(loadConfig({ ...valid, METRICS_PORT: '9464' })).toMatchObject({
        ok: true,
        config: { ops: { host: '127.0.0.1', port: 9464 } },
      });
      expect(loadConfig({ ...valid, METRICS_PORT: ' ' })).toMatchObject({ ok: true, config: { ops: undefined } });
    });

    it('listens where METRICS_HOST says (0.0.0.0 in a container, an IPv6 address, a name)', () => {
      for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'metrics.internal']) {
        expect(loadConfig({ ...valid, METRICS_PORT: '9464', METRICS_HOST: host })).toMatchObject({
          ok: true,
          config: { ops: { host, port: 9464 } },
        });
      }
    });

    it('takes 0 as any free port', () => {
      expect(loadConfig({ ...valid, METRICS_PORT: '0' })).toMatchObject({ ok: true, config: { ops: { port: 0 } } });
    });

    it.each(['65536', '-1', '80.5', 'prometheus', '1e9'])('rejects METRICS_PORT=%s with one clear sentence', (port) => {
      expect(loadConfig({ ...valid, METRICS_PORT: port })).toEqual({
        ok: false,
        problems: ['METRICS_PORT must be a port number from 1 to 65535 (0: any free port)'],
      });
    });

    it.each(['http://0.0.0.0', '0.0.0.0:9464/metrics', 'two words'])('rejects METRICS_HOST=%s', (host) => {
      expect(loadConfig({ ...valid, METRICS_PORT: '9464', METRICS_HOST: host })).toEqual({
        ok: false,
        problems: ['METRICS_HOST must be a host name or an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0'],
      });
    });
  });
});

describe('NSFW_CLASSIFIER and NSFW_CLASSIFIER_TIMEOUT_MS (the local classifier)', () => {
  it('is on by default, with a 10 s bound on one classification', () => {
    expect(loadConfig(valid)).toMatchObject({ ok: true, config: { classifier: { enabled: true, timeoutMs: 10_000 } } });
    expect(loadConfig({ ...valid, NSFW_CLASSIFIER: '', NSFW_CLASSIFIER_TIMEOUT_MS: ' ' })).toMatchObject({
      ok: true,
      config: { classifier: { enabled: true, timeoutMs: 10_000 } },
    });
  });

  it('turns off with NSFW_CLASSIFIER=off and takes another bound', () => {
    expect(loadConfig({ ...valid, NSFW_CLASSIFIER: 'off', NSFW_CLASSIFIER_TIMEOUT_MS: '2500' })).toMatchObject({
      ok: true,
      config: { classifier: { enabled: false, timeoutMs: 2_500 } },
    });
  });

  it.each(['yes', 'true', '1', 'OFF'])('rejects NSFW_CLASSIFIER=%s with one clear sentence', (value) => {
    expect(loadConfig({ ...valid, NSFW_CLASSIFIER: value })).toEqual({
      ok: false,
      problems: ['NSFW_CLASSIFIER must be on or off'],
    });
  });

  it.each([
    ['50', 'NSFW_CLASSIFIER_TIMEOUT_MS must be at least 1000'],
    // Shorter than a classification on a busy machine: most images would be held unchecked.
    ['200', 'NSFW_CLASSIFIER_TIMEOUT_MS must be at least 1000'],
    ['600000', 'NSFW_CLASSIFIER_TIMEOUT_MS must be at most 120000'],
    ['ten seconds', 'NSFW_CLASSIFIER_TIMEOUT_MS must be a whole number'],
  ])('rejects NSFW_CLASSIFIER_TIMEOUT_MS=%s', (value, problem) => {
    expect(loadConfig({ ...valid, NSFW_CLASSIFIER_TIMEOUT_MS: value })).toEqual({ ok: false, problems: [problem] });
  });
});

describe('resolveLogFormat', () => {
  it.each([
    [{ format: undefined, nodeEnv: undefined, isTTY: true }, 'pretty'],
    [{ format: undefined, nodeEnv: undefined, isTTY: false }, 'json'],
    [{ format: undefined, nodeEnv: undefined, isTTY: undefined }, 'json'],
    [{ format: undefined, nodeEnv: 'production', isTTY: true }, 'pretty'],
    [{ format: undefined, nodeEnv: 'development', isTTY: false }, 'pretty'],
    [{ format: 'json', nodeEnv: 'development', isTTY: true }, 'json'],
    [{ format: 'pretty', nodeEnv: undefined, isTTY: false }, 'pretty'],
  ] as const)('%o -> %s', (input, expected) => {
    expect(resolveLogFormat(input)).toBe(expected);
  });

  it('is what loadConfig uses, with the terminal fact the entry point passes', () => {
    const at = (env: Record<string, string>, isTTY?: boolean) => {
      const result = loadConfig({ ...valid, ...env }, undefined, { isTTY });
      return result.ok ? result.config.log.format : undefined;
    };
    expect(at({}, true)).toBe('pretty');
    expect(at({}, false)).toBe('json');
    expect(at({})).toBe('json');
    expect(at({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(at({ LOG_FORMAT: ' ' }, true)).toBe('pretty');
  });

  it('bounds the start: DISCORD_LOGIN_TIMEOUT_MS defaults to 30 s', () => {
    const result = loadConfig(valid);
    expect(result.ok && result.config.discordLoginTimeoutMs).toBe(30_000);
    expect(loadConfig({ ...valid, DISCORD_LOGIN_TIMEOUT_MS: '10' }).ok).toBe(false);
  });
});

describe('the image tools’ settings', () => {
  it('sends the attachment URL, upscales to 2k, and prices edits and upscales like images by default', () => {
    expect(loadConfig(valid)).toMatchObject({
      ok: true,
      config: {
        tools: { editImageInput: 'url', upscaleResolution: '2k', pricePerEdit: undefined, pricePerUpscale: undefined },
      },
    });
    expect(loadConfig({ ...valid, PRICE_PER_IMAGE: '0.02' })).toMatchObject({
      ok: true,
      config: { tools: { pricePerEdit: '0.02', pricePerUpscale: '0.02' } },
    });
  });

  it('reads each setting, prices kept as written', () => {
    const result = loadConfig({
      ...valid,
      EDIT_IMAGE_INPUT: 'base64',
      UPSCALE_RESOLUTION: '4k',
      PRICE_PER_IMAGE: '0.02',
      PRICE_PER_EDIT: '0.030',
      PRICE_PER_UPSCALE: '0.005',
    });
    expect(result).toMatchObject({
      ok: true,
      config: {
        tools: { editImageInput: 'base64', upscaleResolution: '4k', pricePerEdit: '0.030', pricePerUpscale: '0.005' },
      },
    });
    // The images' own price is untouched by the tools' prices.
    expect(result.ok && result.config.price).toEqual({ perImage: '0.02', currency: undefined });
  });

  it('prices an edit or an upscale without a price per image', () => {
    expect(loadConfig({ ...valid, PRICE_PER_UPSCALE: '1' })).toMatchObject({
      ok: true,
      config: { price: undefined, tools: { pricePerEdit: undefined, pricePerUpscale: '1' } },
    });
  });

  it('treats blank values as unset', () => {
    expect(loadConfig({ ...valid, EDIT_IMAGE_INPUT: ' ', UPSCALE_RESOLUTION: '', PRICE_PER_EDIT: '' })).toMatchObject({
      ok: true,
      config: { tools: { editImageInput: 'url', upscaleResolution: '2k', pricePerEdit: undefined } },
    });
  });

  it('names every wrong value with the values that work, and never echoes it', () => {
    const result = loadConfig({
      ...valid,
      EDIT_IMAGE_INPUT: 'data-uri',
      UPSCALE_RESOLUTION: '8k',
      PRICE_PER_EDIT: '$0.03',
      PRICE_PER_UPSCALE: '0,5',
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        'EDIT_IMAGE_INPUT must be url or base64',
        'PRICE_PER_EDIT must be a non-negative decimal number with a dot, such as 0.02 (no currency sign)',
        'PRICE_PER_UPSCALE must be a non-negative decimal number with a dot, such as 0.02 (no currency sign)',
        'UPSCALE_RESOLUTION must be 2k or 4k',
      ],
    });
    expect(formatProblems(result.ok ? [] : result.problems)).not.toMatch(/data-uri|\$0\.03|0,5/);
  });

  it.each(['URL', '4K', '2048'])('is exact about case and spelling: %s is refused', (value) => {
    expect(loadConfig({ ...valid, EDIT_IMAGE_INPUT: value }).ok).toBe(false);
    expect(loadConfig({ ...valid, UPSCALE_RESOLUTION: value }).ok).toBe(false);
  });
});

describe('USER_INSTALL, DM_NSFW and USER_INSTALL_DAILY_BUDGET (installs for yourself)', () => {
  it('is on by default, shows a flagged image in the bot’s DM as a spoiler, and allows 200 images a day without a server install', () => {
    expect(loadConfig(valid)).toMatchObject({
      ok: true,
      config: { userInstall: { enabled: true, dmNsfw: 'spoiler', dailyBudget: 200 } },
    });
    expect(loadConfig({ ...valid, USER_INSTALL: ' ', DM_NSFW: '', USER_INSTALL_DAILY_BUDGET: '' })).toMatchObject({
      ok: true,
      config: { userInstall: { enabled: true, dmNsfw: 'spoiler', dailyBudget: 200 } },
    });
  });

  it('takes what the operator sets, 0 allowing no image outside servers that installed the bot', () => {
    expect(
      loadConfig({ ...valid, USER_INSTALL: 'off', DM_NSFW: 'hold', USER_INSTALL_DAILY_BUDGET: '0' }),
    ).toMatchObject({
      ok: true,
      config: { userInstall: { enabled: false, dmNsfw: 'hold', dailyBudget: 0 } },
    });
    expect(loadConfig({ ...valid, USER_INSTALL_DAILY_BUDGET: '5000' })).toMatchObject({
      ok: true,
      config: { userInstall: { dailyBudget: 5000 } },
    });
  });

  it.each([
    [{ USER_INSTALL: 'yes' }, 'USER_INSTALL must be on or off'],
    [{ USER_INSTALL: 'ON' }, 'USER_INSTALL must be on or off'],
    [
      { DM_NSFW: 'show' },
      'DM_NSFW must be hold (flagged images are never shown in DMs) or spoiler (shown to the member alone, blurred, with a warning)',
    ],
    [{ USER_INSTALL_DAILY_BUDGET: '-1' }, 'USER_INSTALL_DAILY_BUDGET must be at least 0'],
    [{ USER_INSTALL_DAILY_BUDGET: '2.5' }, 'USER_INSTALL_DAILY_BUDGET must be a whole number'],
    [{ USER_INSTALL_DAILY_BUDGET: 'lots' }, 'USER_INSTALL_DAILY_BUDGET must be a whole number'],
    [{ USER_INSTALL_DAILY_BUDGET: '1000001' }, 'USER_INSTALL_DAILY_BUDGET must be at most 1000000'],
  ])('rejects %o with one clear sentence', (env, problem) => {
    expect(loadConfig({ ...valid, ...env })).toEqual({ ok: false, problems: [problem] });
  });

  it('are all in .env.example, with their defaults', () => {
    const example = readFileSync(join(import.meta.dirname, '..', '.env.example'), 'utf8');
    for (const line of ['USER_INSTALL=on', 'DM_NSFW=spoiler', 'USER_INSTALL_DAILY_BUDGET=200'])
      expect(example.split('\n')).toContain(line);
  });
});
