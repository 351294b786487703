import { describe, expect, it } from 'vitest';
import { parseTaskResult, parseTaskId } from '../../src/ppinfra/parse.ts';

const envelope = (task: object, rest: object = {}) => ({
  extra: { has_nsfw_contents: [] },
  task,
  images: [],
  videos: [],
  audios: [],
  ...rest,
});
const image = (over: object = {}) => ({
  image_url: 'https://cdn.example/a.jpeg',
  image_url_ttl: '0',
  image_type: 'jpeg',
  nsfw_detection_result: null,
  ...over,
});

describe('parseTaskResult', () => {
  it('parses the documented success example', () => {
    const body = envelope(
      {
        task_id: 't1',
        task_type: 'QWEN_IMAGE_TEXT_TO_IMAGE',
        status: 'TASK_STATUS_SUCCEED',
        reason: '',
        eta: 0,
        progress_percent: 0,
      },
      { images: [image()] },
    );
    expect(parseTaskResult(body, 't1')).toEqual({
      taskId: 't1',
      status: 'succeed',
      rawStatus: 'TASK_STATUS_SUCCEED',
      reason: '',
      etaSeconds: 0,
      progressPercent: 0,
      images: [
        {
          url: 'https://cdn.example/a.jpeg',
          type: 'jpeg',
          ttlSeconds: null,
          nsfw: false,
          nsfwSignals: { hasNsfwContents: null, detectionResult: null },
        },
      ],
    });
  });

  it.each([
    ['TASK_STATUS_QUEUED', 'queued'],
    ['TASK_STATUS_PROCESSING', 'processing'],
    ['TASK_STATUS_FAILED', 'failed'],
  ])('maps %s to %s', (raw, status) => {
    expect(
      parseTaskResult(envelope({ status: raw, reason: raw === 'TASK_STATUS_FAILED' ? 'boom' : '' }), 't').status,
    ).toBe(status);
  });

  it('is lenient: numeric strings, numbers, missing arrays and extra', () => {
    const result = parseTaskResult(
      { task: { status: 'TASK_STATUS_PROCESSING', eta: '12', progress_percent: 40 } },
      't9',
    );
    expect(result).toMatchObject({ taskId: 't9', etaSeconds: 12, progressPercent: 40, images: [] });
    const ttl = parseTaskResult(
      envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [image({ image_url_ttl: 3600 })] }),
      't',
    );
    expect(ttl.images[0]?.ttlSeconds).toBe(3600);
    const ttlString = parseTaskResult(
      envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [image({ image_url_ttl: '3600' })] }),
      't',
    );
    expect(ttlString.images[0]?.ttlSeconds).toBe(3600);
  });

  it.each([
    ['has_nsfw_contents true', { extra: { has_nsfw_contents: [true] } }, image(), true],
    ['nsfw_detection_result present', {}, image({ nsfw_detection_result: { valid: true, confidence: 0.9 } }), true],
    ['has_nsfw_contents false', { extra: { has_nsfw_contents: [false] } }, image(), false],
    ['empty flags', {}, image(), false],
  ])('flags NSFW conservatively: %s', (_name, rest, img, flagged) => {
    const body = { ...envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [img] }), ...rest };
    expect(parseTaskResult(body, 't').images[0]?.nsfw).toBe(flagged);
  });

  // One table for both fields: what the provider might send, and whether it flags the image.
  const SIGNALS: [string, unknown, boolean][] = [
    ['true', true, true],
    ['"true"', 'true', true],
    ['"TRUE"', 'TRUE', true],
    ['" True "', ' True ', true],
    ['1', 1, true],
    ['"1"', '1', true],
    ['a confidence 0.7', 0.7, true],
    ['"yes"', 'yes', true],
    ['a label "explicit"', 'explicit', true],
    ['[true]', [true], true],
    ['["true"]', ['true'], true],
    ['[false, 1]', [false, 1], true],
    ['[null, {"label":"porn"}]', [null, { label: 'porn' }], true],
    ['{valid, confidence}', { valid: true, confidence: 0.97 }, true],
    ['{valid: false} (what valid means is unknown)', { valid: false }, true],
    ['{} (says nothing)', {}, false],
    ['[]', [], false],
    ['[false]', [false], false],
    ['[0, "false", null]', [0, 'false', null], false],
    ['null', null, false],
    ['false', false, false],
    ['"false"', 'false', false],
    ['"False"', 'False', false],
    ['0', 0, false],
    ['"0"', '0', false],
    ['""', '', false],
    ['"no"', 'no', false],
  ];
  const succeeded = (rest: object, img: object) => ({
    ...envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [img] }),
    ...rest,
  });

  it.each(SIGNALS)('reads nsfw_detection_result %s generously (flagged: %s)', (_name, value, flagged) => {
    const [result] = parseTaskResult(succeeded({}, image({ nsfw_detection_result: value })), 't').images;
    expect(result?.nsfw).toBe(flagged);
    // The reviewer sees what came, as it came.
    expect(result?.nsfwSignals.detectionResult).toEqual(value);
  });

  it.each(SIGNALS)(
    'reads has_nsfw_contents %s at the image’s index generously (flagged: %s)',
    (_name, value, flagged) => {
      const [result] = parseTaskResult(succeeded({ extra: { has_nsfw_contents: [value] } }, image()), 't').images;
      expect(result?.nsfw).toBe(flagged);
      expect(result?.nsfwSignals.hasNsfwContents).toEqual(value);
    },
  );

  it.each(SIGNALS.filter(([, value]) => !Array.isArray(value)))(
    'reads has_nsfw_contents sent whole as %s for the image (flagged: %s)',
    (_name, value, flagged) => {
      expect(parseTaskResult(succeeded({ extra: { has_nsfw_contents: value } }, image()), 't').images[0]?.nsfw).toBe(
        flagged,
      );
    },
  );

  it('reads has_nsfw_contents by index when it lists every image, and whole when its positions cannot be trusted', () => {
    const two = (flags: unknown) =>
      parseTaskResult(
        {
          ...envelope(
            { status: 'TASK_STATUS_SUCCEED' },
            { images: [image(), image({ image_url: 'https://cdn.example/b.jpeg' })] },
          ),
          extra: { has_nsfw_contents: flags },
        },
        't',
      ).images.map((i) => i.nsfw);
    expect(two([false, true])).toEqual([false, true]);
    expect(two([true, false])).toEqual([true, false]);
    expect(two([true])).toEqual([true, true]);
    expect(two([false, false, true])).toEqual([true, true]);
    expect(two(true)).toEqual([true, true]);
    expect(two([])).toEqual([false, false]);
  });

  it.each([
    ['an unknown status', envelope({ status: 'TASK_STATUS_CANCELED' }), 'TASK_STATUS_CANCELED'],
    ['no status', { task: {} }, 'MISSING_STATUS'],
    ['a success without images', envelope({ status: 'TASK_STATUS_SUCCEED' }), 'NO_IMAGES'],
    [
      'a success whose images have no URL',
      envelope({ status: 'TASK_STATUS_SUCCEED' }, { images: [{ image_type: 'jpeg' }] }),
      'NO_IMAGES',
    ],
    ['a body that is not an object', 'oops', 'MISSING_STATUS'],
  ])('turns %s into a typed task failure', (_name, body, reason) => {
    expect(() => parseTaskResult(body, 't')).toThrow(expect.objectContaining({ kind: 'task_failed', reason }));
  });
});

describe('parseTaskId', () => {
  it('reads task_id and refuses a body without one', () => {
    expect(parseTaskId({ task_id: 'abc' })).toBe('abc');
    expect(() => parseTaskId({})).toThrow(expect.objectContaining({ kind: 'server' }));
  });
});
