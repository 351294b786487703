/**
 * The sentences of installs for oneself: the bot's DM, DMs between others, servers that did not
 * add the bot (src/discord/install.ts).
 */
export const en = {
  // Told at once, nothing spent, where only the token can answer and the wait outlasts its 15 minutes.
  'user_install.queue_outlives_token':
    '⏳ I’m busy: your image would be ready around {readyAt}, and Discord only lets me answer here for 15 minutes. Nothing was charged. Try again in a few minutes, or ask in our DM.',
  // A flagged image in a place nobody can review it (a server that has not added the bot, a DM between others).
  'user_install.flag_withheld':
    '🔞 The image was flagged as possibly not safe for work. This server hasn’t added me, so no moderator can review it, and it won’t be shown here. Try another prompt, or ask in our DM.',
  'user_install.flag_withheld_private':
    '🔞 The image was flagged as possibly not safe for work, so it won’t be shown in this conversation. Try another prompt.',
  // DM_NSFW=spoiler: the member alone sees it, blurred.
  'user_install.dm_content_warning':
    '⚠️ Content warning: the image service flagged this image as possibly not safe for work. Only you can see it here; click the image to reveal it.',
  // DM_NSFW=hold.
  'user_install.dm_held':
    '🔞 The image was flagged as possibly not safe for work, so it isn’t shown, even here. Try another prompt.',
  // The image came after the interaction's token had expired: sent to the member's DM instead.
  'user_install.delivered_to_dm':
    'Here is your image for “{prompt}”. It finished after I could no longer update the message where you asked ({where}), so I sent it here.',
  // Neither the token nor a DM could reach the member; shown the next time they use the bot.
  'user_install.dm_failed':
    'An image you asked for (“{prompt}”) finished after I could no longer update its message, and I couldn’t send it to you directly: your DMs are closed to me. Use /imagine-history to find it.',
  // The batch line of one image withheld where nobody can review it.
  'user_install.batch_withheld':
    '🔞 Image {index}/{count} was flagged as possibly not safe for work and won’t be shown here.',
  // /imagine-history: images nobody saw.
  'user_install.history_withheld': 'withheld (flagged, nobody could review it there)',
  'user_install.history_unreachable':
    'finished after the link expired, and your DMs were closed to me: **Get it #{n}** below gives it to you (open your DMs to me to get the next ones directly)',
  // Get it: the image of a job that reached nobody, kept for the member (src/discord/delivery.ts).
  'user_install.fetch_button': 'Get it #{n}',
  'user_install.fetched':
    'Here is your image for “{prompt}”. Only you can see this. You can get it again from /imagine-history for as long as it is listed there.',
  'user_install.fetch_gone':
    'I no longer have that image: images nobody could receive are kept for {days} days. Ask for it again with /imagine.',
  'user_install.fetch_not_yours': 'Only the member who asked for this image can get it.',
  // Where only the token answers, a minute before it expires, on a job still running.
  'user_install.token_expiring':
    '⏳ Still working on it. Discord only lets me update this message for 15 minutes, so I’ll send the image to your DM with me when it’s ready — if your DMs are closed to me, use /imagine-history to get it.',
  // USER_INSTALL=off, for commands Discord still offers from an older registration.
  'user_install.disabled': 'The bot’s operator only allows me in servers that added me. Use me in one of those.',
  // app_permissions lacks what an image needs, checked before anything is spent.
  'user_install.permissions_missing':
    'I can’t post images here: this place doesn’t let apps its members added send {permissions}. Nothing was charged. Try our DM instead, or ask the server to add me.',
  // USER_INSTALL_DAILY_BUDGET reached.
  'user_install.budget_reached':
    'Images made in DMs and in servers that haven’t added me share a daily limit of {limit}, and it has been reached. More can be created {retryAt}; in a server that added me, its own limit applies.',
  'user_install.budget_closed':
    'The bot’s operator doesn’t allow images in DMs or in servers that haven’t added me. Use me in a server that added me.',
  'user_install.where.dm': 'a DM',
  'user_install.where.group_dm': 'a group DM',
  'user_install.where.server': 'a server',
} as const;

export const zhCN: Partial<Record<keyof typeof en, string>> = {
  'user_install.queue_outlives_token':
    '⏳ 我正忙：你的图片预计在{readyAt}完成，而 Discord 只允许我在 15 分钟内在这里回复。没有产生任何费用。请过几分钟再试，或在与我的私信中使用。',
  'user_install.flag_withheld':
    '🔞 这张图片被标记为可能不适宜内容。本服务器没有添加我，没有管理员可以审核，因此不会在这里显示。请换一个提示词，或在与我的私信中再试。',
  'user_install.flag_withheld_private':
    '🔞 这张图片被标记为可能不适宜内容，因此不会在此对话中显示。请换一个提示词再试。',
  'user_install.dm_content_warning':
    '⚠️ 内容提醒：图像服务将此图片标记为可能不适宜内容。这里只有你能看到；点击图片即可查看。',
  'user_install.dm_held': '🔞 这张图片被标记为可能不适宜内容，因此即使在这里也不会显示。请换一个提示词再试。',
  'user_install.delivered_to_dm':
    '这是你用“{prompt}”生成的图片。它完成时我已无法再更新你提出请求的那条消息（{where}），所以发到了这里。',
  'user_install.dm_failed':
    '你之前请求的图片（“{prompt}”）完成时，我已无法更新原来的消息，也无法私信你：你关闭了来自我的私信。请使用 /imagine-history 查看。',
  'user_install.permissions_missing':
    '我无法在这里发布图片：此处不允许成员添加的应用发送{permissions}。没有产生任何费用。请改在与我的私信中使用，或请服务器添加我。',
  'user_install.budget_reached':
    '在私信和未添加我的服务器中生成的图片共用每天 {limit} 张的额度，目前已用完。{retryAt}可以继续创建；在已添加我的服务器中，适用该服务器自己的额度。',
  'user_install.budget_closed': '机器人的运营者不允许在私信或未添加我的服务器中生成图片。请在已添加我的服务器中使用。',
  'user_install.where.dm': '私信',
  'user_install.where.group_dm': '群组私信',
  'user_install.where.server': '服务器',
  'user_install.batch_withheld': '🔞 第 {index}/{count} 张被标记为可能不适宜内容，不会在这里显示。',
  'user_install.history_withheld': '未显示（被标记，此处无人可以审核）',
  'user_install.history_unreachable':
    '在链接失效后才完成，且你关闭了来自我的私信：点击下方的 **取回图片 #{n}** 即可获取（允许我私信你，之后的图片就会直接发给你）',
  'user_install.fetch_button': '取回图片 #{n}',
  'user_install.fetched':
    '这是你用“{prompt}”生成的图片，只有你能看到。只要它还在 /imagine-history 中，你就可以再次取回。',
  'user_install.fetch_gone': '这张图片已不再保留：无人能接收的图片只保留 {days} 天。请用 /imagine 重新生成。',
  'user_install.fetch_not_yours': '只有请求这张图片的成员才能取回它。',
  'user_install.token_expiring':
    '⏳ 仍在生成中。Discord 只允许我在 15 分钟内更新这条消息，所以图片完成后我会私信发给你——如果你关闭了来自我的私信，请使用 /imagine-history 取回。',
  'user_install.disabled': '机器人的运营者只允许在已添加我的服务器中使用我。请在这些服务器中使用。',
};
