// What the message builders put in front of members and moderators: prompts that read as the
// member's words (no hidden links, no headings posing as the bot), and no link previews.
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/job.ts';
import { failureBody, progressBody, safeText, textBody } from '../../src/discord/messages.ts';
import { batchBody, noticeBody, resultBody } from '../../src/discord/result-messages.ts';

const SUPPRESS_EMBEDS = 1 << 2;

/**
 * Whether Discord would read `[` at `index` as markup: it would unless an odd number of
 * backslashes stand right before it (an even number escape each other).
 */
const unescaped = (text: string, index: number) => {
  let slashes = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i--) slashes++;
  return slashes % 2 === 0;
};
/** Every `[` Discord would still read as the start of a masked link. */
const openBrackets = (text: string) => [...text.matchAll(/\[/g)].filter((m) => unescaped(text, m.index)).length;

describe('safeText', () => {
  it.each([
    ['a masked link', '[Approve here](https://evil.example)', '\\[Approve here\\](https://evil.example)'],
    [
      'a masked link with a hidden address',
      '[Approve here](<https://evil.example>)',
      '\\[Approve here\\](<https://evil.example>)',
    ],
    ['a heading', '# HEADING', '\\# HEADING'],
    ['a small heading', '### small', '\\### small'],
    ['subtext', '-# fine print', '\\-# fine print'],
    ['a bulleted list', '- approved by a moderator', '\\- approved by a moderator'],
    ['a numbered list', '1. approved', '1\\. approved'],
    ['a quote', '> Approved', '\\> Approved'],
  ])('shows %s as typed, not as markup', (_name, prompt, shown) => {
    expect(safeText(prompt, 1000)).toBe(shown);
  });

  it('leaves no link clickable behind its text, however many a line has', () => {
    // discord.js's own `maskedLink` escape would leave the second one a link.
    const prompt = 'a [cat](https://a.example) and [Approve here](https://evil.example)';
    expect(openBrackets(safeText(prompt, 1000))).toBe(0);
    // A backslash typed before the bracket is shown, and does not undo the escape.
    expect(openBrackets(safeText('\\[Approve here](https://evil.example)', 1000))).toBe(0);
  });

  it('escapes headings on every line, since embeds keep the prompt’s lines', () => {
    expect(safeText('a cat\n# APPROVED\n-# by the moderators', 1000)).toBe(
      'a cat\n\\# APPROVED\n\\-# by the moderators',
    );
  });

  it('still breaks mentions and keeps ordinary words and links as they are', () => {
    expect(safeText('a @everyone party poster https://example.com/x.gif', 1000)).toBe(
      'a @\u200beveryone party poster https://example.com/x.gif',
    );
    expect(safeText('<@123> #1 fan', 1000)).toBe('<\u200b@\u200b123> #1 fan');
  });
});

const job = (over: Partial<Job> = {}) =>
  ({
    id: 'job000000001',
    prompt: 'a party poster https://cdn.example/x.gif',
    size: '1024*1024',
    locale: 'en-US',
    userId: '1',
    guildId: '2',
    channelId: '3',
    createdAt: 0,
    submittedAt: 0,
    completedAt: 1000,
    reply: { applicationId: '4', token: 't', createdAt: 0 },
    ...over,
  }) as Job;

describe('message bodies', () => {
  it('suppress link previews on every text that quotes the prompt', () => {
    const bodies = [
      progressBody(job(), { phase: 'submitting' }),
      failureBody(job(), { kind: 'task_failed', reason: 'see https://x.example/y.png' }),
      noticeBody(job(), 'awaiting_review'),
      textBody('a text of ours, quoting https://cdn.example/x.gif'),
      batchBody(
        job({ batch: { id: 'job000000001', index: 0, count: 2, jobIds: ['job000000001', 'job000000002'] } }) as Job & {
          batch: NonNullable<Job['batch']>;
        },
        [undefined, undefined],
        [],
        {
          kind: 'progress',
          view: { phase: 'submitting' },
        },
      ),
    ];
    for (const body of bodies) {
      expect(body.content).toContain('https://cdn.example/x.gif');
      expect(body.flags & SUPPRESS_EMBEDS).toBe(SUPPRESS_EMBEDS);
      expect(body.allowed_mentions).toEqual({ parse: [] });
    }
  });

  it('keep the prompt out of the result’s content, and show its embed again', () => {
    for (const spoiler of [false, true]) {
      const body = resultBody(job(), 'x.png', 1000, spoiler);
      expect(body.content).not.toContain('https://');
      expect(body.embeds[0]?.description).toContain('https://cdn.example/x.gif');
      expect(body.flags).toBe(0);
    }
  });
});

describe('held images in a batch message', () => {
  const batch = { id: 'job000000001', index: 0, count: 2, jobIds: ['job000000001', 'job000000002'] };
  const first = job({ batch }) as Job & { batch: NonNullable<Job['batch']> };
  const held = (reasons: NonNullable<Job['nsfw']>['reasons'], channelId?: string) =>
    job({
      id: 'job000000002',
      batch: { ...batch, index: 1 },
      state: 'held',
      review: { status: 'pending', createdAt: 0, ...(channelId ? { channelId } : {}) },
      nsfw: { flagged: false, hasNsfwContents: null, detectionResult: null, reasons },
    });
  const line = (sibling: Job) =>
    batchBody(first, [first, sibling], [], { kind: 'progress', view: { phase: 'submitting' } }).content;

  it('say an image was flagged only when something flagged it', () => {
    expect(line(held(['classifier'], '9'))).toContain('Image 2 of 2 was flagged');
    expect(line(held(['review_all'], '9'))).toContain(
      'Image 2 of 2 is waiting for a moderator: this server has every image looked at',
    );
    expect(line(held(['review_all']))).toContain(
      'Image 2 of 2 is not shown: this server has every image looked at first',
    );
    expect(line(held(['review_all', 'provider'], '9'))).toContain('was flagged');
  });

  it('say the same of the image that was just held', () => {
    const self = held(['review_all']) as Job & { batch: NonNullable<Job['batch']> };
    const content = batchBody(self, [first, self], [], { kind: 'held', notice: 'awaiting_review' }).content;
    expect(content).toContain('Image 2 of 2 is waiting for a moderator');
    expect(content).not.toContain('flagged');
  });
});
