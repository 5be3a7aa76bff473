#include "protocol/handshake.hpp"

#include <catch2/catch.hpp>

using adms::protocol::handshake_reply;
using adms::protocol::render_handshake;

TEST_CASE("The ATT handshake reply renders every option line in order", "[handshake]")
{
    handshake_reply reply;
    reply.serial_number = "CQUJ231560123";
    reply.attlog_stamp = "9999";
    reply.operlog_stamp = "2";
    reply.time_zone = 3;
    CHECK(render_handshake(reply) == "GET OPTION FROM: CQUJ231560123\n"
                                     "ATTLOGStamp=9999\n"
                                     "OPERLOGStamp=2\n"
                                     "ATTPHOTOStamp=None\n"
                                     "ErrorDelay=30\n"
                                     "Delay=10\n"
                                     "TransTimes=00:00;14:05\n"
                                     "TransInterval=1\n"
                                     "TransFlag=TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\t"
                                     "ChgUser\tEnrollFP\tChgFP\tUserPic\n"
                                     "TimeZone=3\n"
                                     "Realtime=1\n"
                                     "Encrypt=None\n"
                                     "ServerVer=2.4.1\n"
                                     "PushProtVer=2.4.1");
}

TEST_CASE("A device without pushver gets the legacy stamp names", "[handshake]")
{
    handshake_reply reply;
    reply.serial_number = "OLD1";
    reply.legacy_stamp_names = true;
    reply.attlog_stamp = "100";
    reply.operlog_stamp = "7";
    reply.attphoto_stamp = "0";
    auto body = render_handshake(reply);
    CHECK(body.find("\nStamp=100\nOpStamp=7\nPhotoStamp=0\n") != std::string::npos);
    CHECK(body.find("ATTLOGStamp") == std::string::npos);
    CHECK(body.find("OPERLOGStamp") == std::string::npos);
}

TEST_CASE("Minute time zones, realtime off and push options render as set", "[handshake]")
{
    handshake_reply reply;
    reply.serial_number = "S1";
    reply.time_zone = -210;
    reply.realtime = false;
    reply.delay = 30;
    reply.error_delay = 60;
    reply.trans_interval = 0;
    reply.more_stamps = {{"BIODATAStamp", "4"}, {"IDCARDStamp", "None"}};
    reply.push_options_flag = 1;
    reply.push_options = "FingerFunOn,FaceFunOn";
    CHECK(render_handshake(reply) == "GET OPTION FROM: S1\n"
                                     "ATTLOGStamp=None\n"
                                     "OPERLOGStamp=None\n"
                                     "ATTPHOTOStamp=None\n"
                                     "BIODATAStamp=4\n"
                                     "IDCARDStamp=None\n"
                                     "ErrorDelay=60\n"
                                     "Delay=30\n"
                                     "TransTimes=00:00;14:05\n"
                                     "TransInterval=0\n"
                                     "TransFlag=TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\t"
                                     "ChgUser\tEnrollFP\tChgFP\tUserPic\n"
                                     "TimeZone=-210\n"
                                     "Realtime=0\n"
                                     "Encrypt=None\n"
                                     "ServerVer=2.4.1\n"
                                     "PushProtVer=2.4.1\n"
                                     "PushOptionsFlag=1\n"
                                     "PushOptions=FingerFunOn,FaceFunOn");
}

TEST_CASE("No value can add a line to the handshake reply", "[handshake]")
{
    handshake_reply reply;
    reply.serial_number = "S1";
    reply.attlog_stamp = "1\nTimeZone=8";
    reply.trans_times = "00:00\r\nRealtime=0";
    auto body = render_handshake(reply);
    CHECK(body.find("ATTLOGStamp=1 TimeZone=8\n") != std::string::npos);
    CHECK(body.find("TransTimes=00:00  Realtime=0\n") != std::string::npos);
    CHECK(body.find('\r') == std::string::npos);
    CHECK(std::count(body.begin(), body.end(), '\n') == 13);
}

TEST_CASE("The push reply lists the server's push parameters, one per line", "[handshake][push]")
{
    adms::protocol::push_reply reply;
    reply.error_delay = 30;
    reply.delay = 10;
    reply.session_id = "ABC\r\nEvil=1";
    CHECK(adms::protocol::format_push_reply(reply) ==
          "ServerVersion=3.0.1\nServerName=ADMS\nPushVersion=3.0.1\nErrorDelay=30\n"
          "RequestDelay=10\nTransTimes=00:00;14:00\nTransInterval=1\n"
          "TransTables=User Transaction\nRealtime=1\nSessionID=ABC  Evil=1\nTimeoutSec=10");
}
